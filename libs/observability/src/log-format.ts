import type { LogLevel } from './log-filter.js';

/** One log record as the formatters see it. */
export interface LogRecord {
  readonly level: LogLevel;
  readonly message: string;
  readonly target: string;
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
  readonly fields: Readonly<Record<string, unknown>> | undefined;
  /** The active span's trace and span ids (hex), when a traced request or job is running. */
  readonly traceId?: string | undefined;
  readonly spanId?: string | undefined;
}

let cachedMs = Number.NaN;
let cachedIso = '';

/**
 * The ISO 8601 form of a time in milliseconds, remembered for the last millisecond asked: under
 * load many lines share one (the access log writes one per request), and each saves a Date.
 */
export function isoTimestamp(ms: number): string {
  if (ms !== cachedMs) {
    cachedIso = new Date(ms).toISOString();
    cachedMs = ms;
  }
  return cachedIso;
}

/** Errors do not survive JSON.stringify (their properties are not enumerable). */
function serializeError(error: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { name: error.name, message: error.message };
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) out['code'] = code;
  if (error.stack !== undefined) out['stack'] = error.stack;
  if (error.cause !== undefined) {
    out['cause'] = error.cause instanceof Error ? serializeError(error.cause) : error.cause;
  }
  return out;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return serializeError(value);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value, jsonReplacer) ?? 'undefined';
  } catch {
    // Circular structures: never let a log call throw.
    return '"[unserializable]"';
  }
}

const RESERVED = new Set(['timestamp', 'level', 'target', 'message', 'trace_id', 'span_id']);

const LEVEL_NAMES: Readonly<Record<LogLevel, string>> = {
  error: 'ERROR',
  warn: 'WARN',
  info: 'INFO',
  debug: 'DEBUG',
  trace: 'TRACE',
};

/** Strings JSON holds as they are: printable ASCII other than `"` and `\`. */
const PLAIN_JSON_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function jsonString(value: string): string {
  return PLAIN_JSON_STRING.test(value) ? `"${value}"` : JSON.stringify(value);
}

/** A field's value as JSON; undefined for what JSON drops from an object (functions, symbols). */
function jsonValue(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return jsonString(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'function':
    case 'symbol':
    case 'undefined':
      return undefined;
    default:
      return safeStringify(value);
  }
}

/**
 * `{"timestamp":…,"level":"INFO","target":"angos::registry","message":…,<fields>}`, one line.
 * Written field by field rather than through an intermediate object: the access log formats one
 * record per request.
 */
export function formatJsonRecord(record: LogRecord): string {
  let line = `{"timestamp":"${isoTimestamp(record.timestamp)}","level":"${LEVEL_NAMES[record.level]}","target":${jsonString(record.target)},"message":${jsonString(record.message)}`;
  // Ids are lower-case hex (checked by the API): nothing to escape.
  if (record.traceId !== undefined) line += `,"trace_id":"${record.traceId}","span_id":"${record.spanId}"`;
  const fields = record.fields;
  if (fields !== undefined) {
    for (const key in fields) {
      if (!Object.hasOwn(fields, key)) continue;
      const value = jsonValue(fields[key]);
      if (value === undefined) continue;
      // A field never overwrites the record's own keys.
      line += `,${jsonString(RESERVED.has(key) ? `field.${key}` : key)}:${value}`;
    }
  }
  return `${line}}`;
}

const BARE_VALUE = /^[\w.:/@+-]+$/;

function textValue(value: unknown): string {
  if (typeof value === 'string') return BARE_VALUE.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (value instanceof Error) return JSON.stringify(value.message);
  return safeStringify(value);
}

/** `2024-05-01T12:00:00.000Z  INFO angos::registry: upload completed namespace=x`, stacks below. */
export function formatTextRecord(record: LogRecord): string {
  let line = `${isoTimestamp(record.timestamp)} ${LEVEL_NAMES[record.level].padStart(5)} ${record.target}: ${record.message}`;
  const stacks: string[] = [];
  if (record.fields !== undefined) {
    for (const [key, value] of Object.entries(record.fields)) {
      if (value === undefined) continue;
      line += ` ${key}=${textValue(value)}`;
      if (value instanceof Error && value.stack !== undefined) stacks.push(value.stack);
    }
  }
  if (record.traceId !== undefined) line += ` trace_id=${record.traceId} span_id=${record.spanId}`;
  return stacks.length === 0 ? line : `${line}\n${stacks.join('\n')}`;
}
