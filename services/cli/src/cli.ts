import yargs from 'yargs';
import { argonCommand } from './commands/argon.js';
import { DEFAULT_CONFIG_PATH } from './commands/global.js';
import { scrubCommand } from './commands/scrub.js';
import { serviceCommand } from './commands/service-command.js';
import { CliError, failureLines } from './errors.js';

function parser(args: readonly string[]) {
  const cli = yargs([...args])
    .scriptName('angos')
    .usage('angos [-c <config>] <command> [<args>]')
    .option('config', {
      alias: 'c',
      type: 'string',
      default: DEFAULT_CONFIG_PATH,
      describe: 'Path to configuration file',
      global: true,
    })
    .command(serviceCommand('server', 'Run the registry HTTP server'))
    .command(serviceCommand('registry-api', 'Run the OCI API service behind a gateway (split deployment)'))
    .command(serviceCommand('gateway', 'Run the gateway in front of registry-api (split deployment)'))
    .command(scrubCommand)
    .command(argonCommand)
    .command('help', 'Display usage information', {}, () => {
      cli.showHelp('log');
    })
    .demandCommand(1, 'specify a command')
    .strict()
    .help()
    .version(false)
    .exitProcess(false)
    .fail((message, error) => {
      // yargs reports its own usage errors as a message; command failures keep their type.
      throw error ?? new CliError([message, 'Run `angos --help` for usage.']);
    });
  return cli;
}

/** Runs the CLI; resolves with the exit status (CLI reference: 0 success, 1 any error). */
export async function runCli(
  args: readonly string[],
  stderr: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  try {
    await parser(args).parseAsync();
    return 0;
  } catch (error) {
    for (const line of failureLines(error)) stderr.write(`${line}\n`);
    return 1;
  }
}
