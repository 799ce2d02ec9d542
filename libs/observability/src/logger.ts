import {
  DEFAULT_LOG_FILTER,
  LEVEL_VERBOSITY,
  type LogFilter,
  type LogLevel,
  parseLogFilter,
  type Verbosity,
  verbosityFor,
} from './log-filter.js';
import { formatJsonRecord, formatTextRecord, type LogRecord } from './log-format.js';
import { activeSpanIds } from './tracing.js';

export type LogFields = Readonly<Record<string, unknown>>;

/**
 * What libraries log through. Messages are static strings; everything variable goes in `fields`
 * (`logger.info('upload completed', { namespace, digest })`), so records stay searchable.
 */
export interface Logger {
  /** Module path of this logger's records, e.g. `angos::registry`. */
  readonly target: string;
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  trace(message: string, fields?: LogFields): void;
  /** Lets callers skip building expensive fields for a disabled level. */
  isEnabled(level: LogLevel): boolean;
  /**
   * A logger for a sub-module: `root.child('registry')` logs as `angos::registry`, and its records
   * are filtered by that target. A module already starting with the root target is taken as is.
   */
  child(module: string): Logger;
}

export type LogFormat = 'json' | 'text';

export interface LoggerOptions {
  /** RUST_LOG-style filter; `info` when absent or empty. */
  filter?: string | undefined;
  /** Defaults to text when the destination is a TTY, JSON otherwise. */
  format?: LogFormat | undefined;
  /** Where records go; process.stderr by default. */
  destination?: NodeJS.WritableStream | undefined;
  /**
   * Whether records at info and below written in one event-loop turn go out in one write (see
   * lineSink). Default: when writing to process.stderr; another destination (a test's stream) gets
   * each line as it is logged.
   */
  batch?: boolean | undefined;
}

export const ROOT_TARGET = 'angos';

/**
 * Internal: where every logger of one createLogger() call writes, one line per record. Written
 * directly rather than through a logging framework: the filter and both formats are ours, and
 * winston cost ~10 MiB of resident memory for a pipe.
 */
interface Sink {
  readonly filter: LogFilter;
  write(record: LogRecord): void;
}

class FilteredLogger implements Logger {
  private readonly verbosity: Verbosity;

  constructor(
    private readonly sink: Sink,
    readonly target: string,
  ) {
    // Resolved once per logger so a disabled call costs one integer comparison.
    this.verbosity = verbosityFor(sink.filter, target);
  }

  isEnabled(level: LogLevel): boolean {
    return LEVEL_VERBOSITY[level] <= this.verbosity;
  }

  error(message: string, fields?: LogFields): void {
    if (this.verbosity >= 1) this.write('error', message, fields);
  }

  warn(message: string, fields?: LogFields): void {
    if (this.verbosity >= 2) this.write('warn', message, fields);
  }

  info(message: string, fields?: LogFields): void {
    if (this.verbosity >= 3) this.write('info', message, fields);
  }

  debug(message: string, fields?: LogFields): void {
    if (this.verbosity >= 4) this.write('debug', message, fields);
  }

  trace(message: string, fields?: LogFields): void {
    if (this.verbosity >= 5) this.write('trace', message, fields);
  }

  child(module: string): Logger {
    const absolute = module === ROOT_TARGET || module.startsWith(`${ROOT_TARGET}::`);
    return new FilteredLogger(this.sink, absolute ? module : `${this.target}::${module}`);
  }

  private write(level: LogLevel, message: string, fields: LogFields | undefined): void {
    // Fields travel in their own property, so a field named `message` or `level` cannot overwrite ours.
    // A record written during a traced request or job carries its ids (tracing.ts; one branch when off).
    const ids = activeSpanIds();
    this.sink.write({
      level,
      message,
      target: this.target,
      timestamp: Date.now(),
      fields,
      traceId: ids?.traceId,
      spanId: ids?.spanId,
    });
  }
}

/** Lines of info and below wait at most this long, in bytes, before they are written. */
const MAX_PENDING_LENGTH = 64 * 1024;

/** Sinks holding lines not yet written; flushed when the process exits, however it exits. */
const pendingSinks = new Set<() => void>();
let exitHookInstalled = false;

function flushOnExit(flush: () => void): void {
  pendingSinks.add(flush);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pending of pendingSinks) pending();
  });
}

/**
 * Lines to `destination`; if it fails (a closed pipe), logging stops rather than crashing the
 * process. With `batch`, records at info and below (the access log: one per request) are
 * gathered and written together once the current batch of I/O callbacks has run, sparing a write
 * per line; warnings and errors are written at once, after whatever waits, so they are never
 * delayed or reordered.
 * What waits is written on process exit too (process.exit, an uncaught exception).
 */
function lineSink(
  destination: NodeJS.WritableStream,
  format: LogFormat,
  filter: LogFilter,
  batch: boolean,
): Sink {
  const render = format === 'json' ? formatJsonRecord : formatTextRecord;
  let broken = false;
  let pending = '';
  let scheduled = false;
  destination.on('error', () => {
    broken = true;
  });
  const flush = () => {
    scheduled = false;
    pendingSinks.delete(flush);
    if (pending === '') return;
    const lines = pending;
    pending = '';
    if (!broken) destination.write(lines);
  };
  return {
    filter,
    write(record) {
      if (broken) return;
      pending += `${render(record)}\n`;
      if (
        !batch ||
        LEVEL_VERBOSITY[record.level] <= LEVEL_VERBOSITY.warn ||
        pending.length >= MAX_PENDING_LENGTH
      ) {
        flush();
      } else if (!scheduled) {
        scheduled = true;
        flushOnExit(flush);
        setImmediate(flush);
      }
    },
  };
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? process.stderr;
  const isTty = (destination as { isTTY?: boolean }).isTTY === true;
  const format = options.format ?? (isTty ? 'text' : 'json');
  const filter = parseLogFilter(options.filter || DEFAULT_LOG_FILTER);

  const logger = new FilteredLogger(
    lineSink(destination, format, filter, options.batch ?? destination === process.stderr),
    ROOT_TARGET,
  );
  for (const directive of filter.invalid) {
    logger.warn('ignoring invalid log filter directive', { directive });
  }
  return logger;
}

/** A logger that drops everything: for tests and tools that must stay quiet. */
export const silentLogger: Logger = {
  target: ROOT_TARGET,
  error() {},
  warn() {},
  info() {},
  debug() {},
  trace() {},
  isEnabled: () => false,
  child: () => silentLogger,
};
