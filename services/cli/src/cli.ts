import yargs, { type Argv } from 'yargs';
import { argonCommand } from './commands/argon.js';
import { commandSpec, GLOBAL_FLAGS } from './commands/flags.js';
import type { GlobalOptions } from './commands/global.js';
import { scrubCommand } from './commands/scrub.js';
import { serviceCommand } from './commands/service-command.js';
import { workerCommand } from './commands/worker.js';
import { yargsOption } from './commands/yargs-flags.js';
import { CliError, failureLines } from './errors.js';
import { versionLine } from './version.js';

const USAGE = 'angos [-c <config>] <command> [<args>]';

function globalFlag(name: string) {
  const flag = GLOBAL_FLAGS.find((candidate) => candidate.name === name);
  if (flag === undefined) throw new Error(`no global flag ${name}`);
  return flag;
}

function parser(args: readonly string[]) {
  const withGlobals = yargs([...args])
    .scriptName('angos')
    .usage(USAGE)
    // Ours, answered before parsing (runCli); declared so that help lists it.
    .version(false)
    .option('config', yargsOption(globalFlag('config'), { global: true }))
    .option(
      'version',
      yargsOption(globalFlag('version'), { global: false }),
    ) as unknown as Argv<GlobalOptions>;
  const cli = withGlobals
    .command(serviceCommand('server'))
    .command(serviceCommand('registry-api'))
    .command(serviceCommand('gateway'))
    .command(serviceCommand('pull-through-cache'))
    .command(scrubCommand)
    .command(workerCommand)
    .command(argonCommand)
    .command('help', commandSpec('help').describe, {}, () => {
      cli.showHelp('log');
    })
    .demandCommand(1, 'specify a command')
    .strict()
    .help('help', globalFlag('help').describe)
    .exitProcess(false)
    .fail((message, error) => {
      // yargs reports its own usage errors as a message; command failures keep their type.
      throw error ?? new CliError([message, 'Run `angos --help` for usage.']);
    });
  return cli;
}

/**
 * Runs the CLI; resolves with the exit status (CLI reference: 0 success, 1 any error). A service
 * stopped by a second signal exits at once from the signal handler instead (shutdown.ts).
 */
export async function runCli(
  args: readonly string[],
  stderr: NodeJS.WritableStream = process.stderr,
  stdout: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  // Like yargs' own --version: answered wherever it appears, whatever else the line says.
  if (args.includes('--version')) {
    stdout.write(`${versionLine()}\n`);
    return 0;
  }
  try {
    await parser(args).parseAsync();
    return 0;
  } catch (error) {
    for (const line of failureLines(error)) stderr.write(`${line}\n`);
    return 1;
  }
}
