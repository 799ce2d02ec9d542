/** Options every command accepts (the `config` flag of flags.ts). */
export interface GlobalOptions {
  config: string;
}
