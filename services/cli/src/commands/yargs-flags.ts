import type { Argv, Options } from 'yargs';
import type { FlagSpec } from './flags.js';

/** How `--help` describes a flag: its value placeholder first, and whether this build runs it. */
function helpText(flag: FlagSpec): string {
  const text = flag.value === undefined ? flag.describe : `${flag.value} ${flag.describe}`;
  return flag.supported ? text : `${text} (not supported yet)`;
}

/** The yargs option of a flag of the tables. */
export function yargsOption(flag: FlagSpec, extra: Options = {}): Options {
  return {
    type: flag.type,
    describe: helpText(flag),
    ...(flag.alias === undefined ? {} : { alias: flag.alias }),
    ...(flag.default === undefined ? {} : { default: flag.default }),
    ...extra,
  };
}

/** Declares every flag of a table on a (sub)command's parser. */
export function withFlags<T>(yargs: Argv<T>, flags: readonly FlagSpec[]): Argv<T> {
  let built = yargs;
  for (const flag of flags) built = built.option(flag.name, yargsOption(flag)) as Argv<T>;
  return built;
}
