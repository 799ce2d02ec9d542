import { ConfigError, formatIssue } from '@angos/config';

/**
 * A failure the CLI reports to the operator as lines on stderr, exiting with status 1
 * (CLI reference, "Exit Codes": invalid config, runtime error).
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(readonly lines: readonly string[]) {
    super(lines.join('\n'));
  }
}

/** The lines to print for a failure: one per configuration issue as `path: reason`. */
export function failureLines(error: unknown): readonly string[] {
  if (error instanceof CliError) return error.lines;
  if (error instanceof ConfigError) return error.issues.map(formatIssue);
  if (error instanceof Error) return [error.message];
  return [String(error)];
}
