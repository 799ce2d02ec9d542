import type { CommandModule } from 'yargs';
import { commandSpec } from './flags.js';
import type { GlobalOptions } from './global.js';

const ARGON = commandSpec('argon');

export const argonCommand: CommandModule<GlobalOptions, GlobalOptions> = {
  command: ARGON.name,
  describe: ARGON.describe,
  // Loaded on demand: the argon2 binding costs ~11 MiB that the services never need.
  handler: async () => (await import('../argon.js')).runArgon(),
};
