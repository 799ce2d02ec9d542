/**
 * Log level filtering in the RUST_LOG syntax the CLI reference documents:
 * `info`, `debug`, `angos=debug`, `warn,angos::registry=debug`.
 *
 * A filter is a comma-separated list of directives. A bare level sets the default; `target=level`
 * sets the level for a module path and everything below it (`angos::registry` covers
 * `angos::registry::upload`); a bare module path enables every level for it, as env_logger does.
 * The most specific (longest) matching target wins. Directives we cannot read are reported, not
 * fatal, so a typo in RUST_LOG never stops the registry from starting.
 */

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Verbosity: 0 = off, 1 = error … 5 = trace. A record is kept when its level's value ≤ the limit. */
export type Verbosity = 0 | 1 | 2 | 3 | 4 | 5;

export const LEVEL_VERBOSITY: Readonly<Record<LogLevel, Verbosity>> = {
  error: 1,
  warn: 2,
  info: 3,
  debug: 4,
  trace: 5,
};

export interface TargetDirective {
  readonly target: string;
  readonly verbosity: Verbosity;
}

export interface LogFilter {
  readonly defaultVerbosity: Verbosity;
  /** Sorted longest target first, so the first match is the most specific. */
  readonly directives: readonly TargetDirective[];
  /** Directives that were ignored because they could not be parsed. */
  readonly invalid: readonly string[];
}

export const DEFAULT_LOG_FILTER = 'info';

const TARGET_PATTERN = /^[A-Za-z_][\w-]*(::[A-Za-z_][\w-]*)*$/;

function parseVerbosity(text: string): Verbosity | undefined {
  const lower = text.toLowerCase();
  if (lower === 'off') return 0;
  return (LOG_LEVELS as readonly string[]).includes(lower) ? LEVEL_VERBOSITY[lower as LogLevel] : undefined;
}

export function parseLogFilter(spec: string | undefined): LogFilter {
  let defaultVerbosity: Verbosity = LEVEL_VERBOSITY[DEFAULT_LOG_FILTER];
  const byTarget = new Map<string, Verbosity>();
  const invalid: string[] = [];

  for (const raw of (spec ?? '').split(',')) {
    const directive = raw.trim();
    if (directive === '') continue;

    const equals = directive.indexOf('=');
    if (equals === -1) {
      const verbosity = parseVerbosity(directive);
      if (verbosity !== undefined) defaultVerbosity = verbosity;
      else if (TARGET_PATTERN.test(directive)) byTarget.set(directive, 5);
      else invalid.push(directive);
      continue;
    }

    const target = directive.slice(0, equals).trim();
    const verbosity = parseVerbosity(directive.slice(equals + 1).trim());
    if (verbosity === undefined || !TARGET_PATTERN.test(target)) {
      invalid.push(directive);
      continue;
    }
    byTarget.set(target, verbosity);
  }

  const directives = [...byTarget]
    .map(([target, verbosity]) => ({ target, verbosity }))
    .sort((a, b) => b.target.length - a.target.length);
  return { defaultVerbosity, directives, invalid };
}

/** Whether `target` is `prefix` itself or a module below it (`a::b` is under `a`, `ab` is not). */
function isUnder(target: string, prefix: string): boolean {
  return target === prefix || (target.startsWith(prefix) && target.startsWith('::', prefix.length));
}

/** The most verbose level enabled for a target. */
export function verbosityFor(filter: LogFilter, target: string): Verbosity {
  for (const directive of filter.directives) {
    if (isUnder(target, directive.target)) return directive.verbosity;
  }
  return filter.defaultVerbosity;
}

export function isLevelEnabled(filter: LogFilter, target: string, level: LogLevel): boolean {
  return LEVEL_VERBOSITY[level] <= verbosityFor(filter, target);
}
