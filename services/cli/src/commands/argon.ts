import type { CommandModule } from 'yargs';
import { runArgon } from '../argon.js';
import type { GlobalOptions } from './global.js';

export const argonCommand: CommandModule<GlobalOptions, GlobalOptions> = {
  command: 'argon',
  describe: 'Generate an Argon2 password hash for basic authentication',
  handler: () => runArgon(),
};
