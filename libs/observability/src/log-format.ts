import type { LogLevel } from './log-filter.js';

/** One log record as the formatters see it. */
export interface LogRecord {
  readonly level: LogLevel;
  readonly message: string;
  readonly target: string;
  readonly timestamp: Date;
  readonly fields: Readonly<Record<string, unknown>> | undefined;
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

const RESERVED = new Set(['timestamp', 'level', 'target', 'message']);

/** `{"timestamp":…,"level":"INFO","target":"angos::registry","message":…,<fields>}`, one line. */
export function formatJsonRecord(record: LogRecord): string {
  const out: Record<string, unknown> = {
    timestamp: record.timestamp.toISOString(),
    level: record.level.toUpperCase(),
    target: record.target,
    message: record.message,
  };
  if (record.fields !== undefined) {
    for (const [key, value] of Object.entries(record.fields)) {
      if (value === undefined) continue;
      // A field never overwrites the record's own keys.
      out[RESERVED.has(key) ? `field.${key}` : key] = value;
    }
  }
  return safeStringify(out);
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
  let line = `${record.timestamp.toISOString()} ${record.level.toUpperCase().padStart(5)} ${record.target}: ${record.message}`;
  const stacks: string[] = [];
  if (record.fields !== undefined) {
    for (const [key, value] of Object.entries(record.fields)) {
      if (value === undefined) continue;
      line += ` ${key}=${textValue(value)}`;
      if (value instanceof Error && value.stack !== undefined) stacks.push(value.stack);
    }
  }
  return stacks.length === 0 ? line : `${line}\n${stacks.join('\n')}`;
}
