import { type Config, parseConfig } from '@angos/config';

/** The smallest valid configuration (127.0.0.1, an fs blob store nobody opens) followed by `toml`. */
export function configOf(toml = ''): Config {
  return parseConfig(`[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n${toml}`)
    .config;
}
