import type { UiConfig } from '../api/types.js';

/** What `/v2/_ext/_ui/config` said: the registry's name, version and who is logged in. */
export const session = $state<{ config: UiConfig | undefined }>({ config: undefined });

/** The address clients pull from: the host the browser reached the registry at. */
export function registryHost(): string {
  return window.location.host;
}
