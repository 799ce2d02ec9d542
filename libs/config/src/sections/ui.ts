import { boolean, nonEmptyString } from '../scalars.js';
import { table, withDefault } from '../schema.js';
import type { UiConfig } from '../types.js';

/** `[ui]`. */
export const uiSchema = table<UiConfig>({
  enabled: withDefault(boolean(), false),
  name: withDefault(nonEmptyString(), 'Angos'),
});
