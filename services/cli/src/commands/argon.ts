import type { CommandModule } from 'yargs';
import type { GlobalOptions } from './global.js';

export const argonCommand: CommandModule<GlobalOptions, GlobalOptions> = {
  command: 'argon',
  describe: 'Generate an Argon2 password hash for basic authentication',
  // Loaded on demand: the argon2 binding costs ~11 MiB that the services never need.
  handler: async () => (await import('../argon.js')).runArgon(),
};
