/** Options every command accepts. */
export interface GlobalOptions {
  config: string;
}

export const DEFAULT_CONFIG_PATH = 'config.toml';
