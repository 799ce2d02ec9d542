import type { ConfigIssue, ConfigWarning } from './errors.js';
import { formatKeyPath, type KeyPath, type PathSegment } from './key-path.js';

/**
 * A tiny declarative schema language for the TOML document. Each section of the configuration
 * reference is written once as data (see `sections/`), which gives three things from one source:
 * validation with the key path in every message, documented defaults, and an inspectable shape
 * that the drift test compares with the reference.
 */

/** Returned by a schema for a value it rejected; the reason is already recorded in the context. */
export const INVALID: unique symbol = Symbol('invalid');
export type Invalid = typeof INVALID;

/** Collects issues and warnings while a document is read; never throws for bad input. */
export class ReadContext {
  readonly issues: ConfigIssue[] = [];
  readonly warnings: ConfigWarning[] = [];

  error(path: KeyPath, message: string): void {
    this.issues.push({ path: formatKeyPath(path), message });
  }

  warn(path: KeyPath, message: string): void {
    this.warnings.push({ path: formatKeyPath(path), message });
  }
}

/** What a schema looks like from outside: used by the drift test and for documentation. */
export type Shape =
  | { readonly kind: 'scalar' }
  | {
      readonly kind: 'table';
      readonly fields: Readonly<Record<string, Schema<unknown>>>;
      /** Deprecated spellings still accepted (with a warning); not part of the typed result. */
      readonly legacy: readonly string[];
    }
  | { readonly kind: 'record'; readonly placeholder: string; readonly value: Schema<unknown> }
  | { readonly kind: 'array'; readonly item: Schema<unknown> }
  | { readonly kind: 'union'; readonly variants: readonly Shape[] };

export interface Schema<T> {
  /** Read `raw` found at `path`; record every problem in `ctx`. */
  read(raw: unknown, path: KeyPath, ctx: ReadContext): T | Invalid;
  readonly shape: Shape;
}

export const SCALAR: Shape = { kind: 'scalar' };

/** A leaf schema from a function that returns the value, or an error message. */
export function scalar<T>(read: (raw: unknown) => { value: T } | { error: string }): Schema<T> {
  return {
    shape: SCALAR,
    read(raw, path, ctx) {
      const result = read(raw);
      if ('error' in result) {
        ctx.error(path, result.error);
        return INVALID;
      }
      return result.value;
    },
  };
}

/** Adds a check on an already well-typed value; the check returns an error message or nothing. */
export function refine<T>(schema: Schema<T>, check: (value: T) => string | undefined): Schema<T> {
  return {
    shape: schema.shape,
    read(raw, path, ctx) {
      const value = schema.read(raw, path, ctx);
      if (value === INVALID) return INVALID;
      const problem = check(value);
      if (problem !== undefined) {
        ctx.error(path, problem);
        return INVALID;
      }
      return value;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Fields of a table

type Siblings = Readonly<Record<string, unknown>>;

export interface Field<T> {
  readonly schema: Schema<Exclude<T, undefined>>;
  readonly presence: 'required' | 'optional' | 'default';
  /** For `default`: computed after the keys that are present, so it may depend on them. */
  readonly defaultValue?: (siblings: Siblings, path: KeyPath, ctx: ReadContext) => T | Invalid;
}

export function required<T>(schema: Schema<T>): Field<T> {
  return { schema: schema as Schema<Exclude<T, undefined>>, presence: 'required' };
}

export function optional<T>(schema: Schema<T>): Field<T | undefined> {
  return { schema: schema as Schema<Exclude<T, undefined>>, presence: 'optional' };
}

/**
 * A key with a documented default. Pass a function for values that must be fresh per document
 * (arrays) or that follow other keys of the same table (`enable_blob_redirect` follows
 * `enable_redirect`).
 */
export function withDefault<T>(schema: Schema<T>, fallback: T | ((siblings: Siblings) => T)): Field<T> {
  return {
    schema: schema as Schema<Exclude<T, undefined>>,
    presence: 'default',
    defaultValue: (siblings) =>
      typeof fallback === 'function' ? (fallback as (s: Siblings) => T)(siblings) : fallback,
  };
}

/** A sub-table that, when absent, is read as an empty table so its own defaults apply. */
export function defaulted<T>(schema: Schema<T>): Field<T> {
  return {
    schema: schema as Schema<Exclude<T, undefined>>,
    presence: 'default',
    defaultValue: (_siblings, path, ctx) => schema.read({}, path, ctx),
  };
}

/** One field per key of `T`, each producing exactly `T[K]` — the compiler keeps schema and type in step. */
export type Fields<T> = { [K in keyof Required<T>]: Field<T[K]> };

// ---------------------------------------------------------------------------------------------
// Tables

/** Reports problems relative to the table being checked. */
export interface Checker {
  readonly path: KeyPath;
  error(relative: PathSegment | KeyPath, message: string): void;
  warn(relative: PathSegment | KeyPath, message: string): void;
}

/** A deprecated key that still works: it sets its replacement unless the replacement is also given. */
export interface LegacyKey {
  readonly replacedBy: string;
  readonly schema: Schema<unknown>;
  readonly convert: (value: unknown) => unknown;
  readonly message: string;
}

export function legacyKey<T, K extends keyof T & string, V>(
  replacedBy: K,
  schema: Schema<V>,
  convert: (value: V) => T[K],
  message: string,
): LegacyKey {
  return { replacedBy, schema, convert: convert as (value: unknown) => unknown, message };
}

export interface TableOptions<T> {
  readonly legacy?: Readonly<Record<string, LegacyKey>>;
  /** Cross-key rules; runs only when every key of the table is valid. */
  readonly check?: (value: T, at: Checker) => void;
  /** Extra words for the `unknown option` message of keys people commonly put in the wrong place. */
  readonly hints?: Readonly<Record<string, string>>;
}

export function isTable(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && !(raw instanceof Date);
}

/** Defines an own property even for names like `__proto__`, which plain assignment would not. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

export function table<T extends object>(fields: Fields<T>, options: TableOptions<T> = {}): Schema<T> {
  const fieldMap = fields as unknown as Record<string, Field<unknown>>;
  return {
    shape: {
      kind: 'table',
      fields: Object.fromEntries(Object.entries(fieldMap).map(([key, field]) => [key, field.schema])),
      legacy: Object.keys(options.legacy ?? {}),
    },
    read(raw, path, ctx) {
      const result = readTable(fields, options, raw, path, ctx);
      if (!result.valid) return INVALID;
      const value = result.value as T;
      options.check?.(value, checkerAt(path, ctx));
      return value;
    },
  };
}

/**
 * Reads a table key by key. The result holds every key that was valid (or defaulted) even when
 * others were not, so a caller can still run checks that depend only on the valid parts.
 */
export function readTable<T extends object>(
  fields: Fields<T>,
  options: Omit<TableOptions<T>, 'check'>,
  raw: unknown,
  path: KeyPath,
  ctx: ReadContext,
): { value: Partial<T>; valid: boolean } {
  const fieldMap = fields as unknown as Record<string, Field<unknown>>;
  const legacy = options.legacy ?? {};
  if (!isTable(raw)) {
    ctx.error(path, 'expected table');
    return { value: {}, valid: false };
  }
  const out: Record<string, unknown> = {};
  const present = new Set<string>();
  let valid = true;

  for (const key of Object.keys(raw)) {
    const field = Object.hasOwn(fieldMap, key) ? fieldMap[key] : undefined;
    if (field) {
      present.add(key);
      const value = field.schema.read(raw[key], [...path, key], ctx);
      if (value === INVALID) valid = false;
      else setOwn(out, key, value);
    } else if (!Object.hasOwn(legacy, key)) {
      const hint = options.hints && Object.hasOwn(options.hints, key) ? options.hints[key] : undefined;
      ctx.error([...path, key], hint ? `unknown option (${hint})` : 'unknown option');
      valid = false;
    }
  }

  for (const [key, spec] of Object.entries(legacy)) {
    if (!Object.hasOwn(raw, key)) continue;
    const value = spec.schema.read(raw[key], [...path, key], ctx);
    if (value === INVALID) {
      valid = false;
    } else if (present.has(spec.replacedBy)) {
      ctx.error([...path, key], `conflicts with ${spec.replacedBy}; remove ${key}`);
      valid = false;
    } else {
      ctx.warn([...path, key], spec.message);
      present.add(spec.replacedBy);
      setOwn(out, spec.replacedBy, spec.convert(value));
    }
  }

  for (const [key, field] of Object.entries(fieldMap)) {
    if (present.has(key)) continue;
    if (field.presence === 'required') {
      ctx.error([...path, key], 'required');
      valid = false;
    } else if (field.presence === 'default' && field.defaultValue) {
      const value = field.defaultValue(out, [...path, key], ctx);
      if (value === INVALID) valid = false;
      else setOwn(out, key, value);
    }
  }
  // Keys in schema order, whatever order the document used, so printed configs read predictably.
  const ordered: Record<string, unknown> = {};
  for (const key of Object.keys(fieldMap)) {
    if (Object.hasOwn(out, key)) setOwn(ordered, key, out[key]);
  }
  return { value: ordered as Partial<T>, valid };
}

export function checkerAt(path: KeyPath, ctx: ReadContext): Checker {
  const at = (relative: PathSegment | KeyPath): KeyPath =>
    Array.isArray(relative) ? [...path, ...relative] : [...path, relative as PathSegment];
  return {
    path,
    error: (relative, message) => ctx.error(at(relative), message),
    warn: (relative, message) => ctx.warn(at(relative), message),
  };
}

// ---------------------------------------------------------------------------------------------
// Collections

export interface RecordOptions<T> {
  /** How the key is written in the reference, e.g. `<name>` or `"<namespace>"`. */
  readonly placeholder: string;
  /** Build the path segment for a key (lets repository keys always print quoted). */
  readonly segment?: (key: string) => PathSegment;
  /** Validates a key; returns an error message or nothing. */
  readonly checkKey?: (key: string) => string | undefined;
  /** Rules across keys alone; runs even when some entries are invalid. */
  readonly checkKeys?: (keys: readonly string[], at: Checker, segment: (key: string) => PathSegment) => void;
  /** Rules across entries; runs only when every entry is valid. */
  readonly check?: (
    value: Readonly<Record<string, T>>,
    at: Checker,
    segment: (key: string) => PathSegment,
  ) => void;
}

/** A table of named tables (`[auth.identity.<name>]`). */
export function record<T>(value: Schema<T>, options: RecordOptions<T>): Schema<Record<string, T>> {
  const segment = options.segment ?? ((key: string) => key);
  return {
    shape: { kind: 'record', placeholder: options.placeholder, value: value as Schema<unknown> },
    read(raw, path, ctx) {
      if (!isTable(raw)) {
        ctx.error(path, 'expected table');
        return INVALID;
      }
      const out: Record<string, T> = {};
      let valid = true;
      for (const key of Object.keys(raw)) {
        const at = [...path, segment(key)];
        const keyProblem = options.checkKey?.(key);
        if (keyProblem !== undefined) {
          ctx.error(at, keyProblem);
          valid = false;
        }
        const entry = value.read(raw[key], at, ctx);
        if (entry === INVALID) valid = false;
        else setOwn(out, key, entry);
      }
      const before = ctx.issues.length;
      options.checkKeys?.(Object.keys(raw), checkerAt(path, ctx), segment);
      if (!valid || ctx.issues.length > before) return INVALID;
      options.check?.(out, checkerAt(path, ctx), segment);
      return out;
    },
  };
}

export interface ArrayOptions {
  readonly minItems?: number;
  /** Message for `minItems` violations. */
  readonly tooFew?: string;
  /** The whole-value type message, e.g. `expected array of strings`. */
  readonly expected?: string;
}

export function arrayOf<T>(item: Schema<T>, options: ArrayOptions = {}): Schema<T[]> {
  return {
    shape: { kind: 'array', item: item as Schema<unknown> },
    read(raw, path, ctx) {
      if (!Array.isArray(raw)) {
        ctx.error(path, options.expected ?? 'expected array');
        return INVALID;
      }
      const out: T[] = [];
      let valid = true;
      raw.forEach((element, index) => {
        const value = item.read(element, [...path, index], ctx);
        if (value === INVALID) valid = false;
        else out.push(value);
      });
      if (options.minItems !== undefined && raw.length < options.minItems) {
        ctx.error(path, options.tooFew ?? `must have at least ${options.minItems} item(s)`);
        return INVALID;
      }
      return valid ? out : INVALID;
    },
  };
}

/**
 * A table whose `discriminant` key picks which schema reads it (OIDC `provider = "github"`).
 * Each variant schema reads the whole table, discriminant included.
 */
export function tagged<T>(discriminant: string, variants: Readonly<Record<string, Schema<T>>>): Schema<T> {
  const names = Object.keys(variants);
  const expected = `expected ${describeChoices(names)}`;
  return {
    shape: { kind: 'union', variants: Object.values(variants).map((variant) => variant.shape) },
    read(raw, path, ctx) {
      if (!isTable(raw)) {
        ctx.error(path, 'expected table');
        return INVALID;
      }
      const tag = raw[discriminant];
      if (tag === undefined) {
        ctx.error([...path, discriminant], `required (${expected.slice('expected '.length)})`);
        return INVALID;
      }
      if (typeof tag !== 'string' || !Object.hasOwn(variants, tag)) {
        ctx.error([...path, discriminant], expected);
        return INVALID;
      }
      return variants[tag]!.read(raw, path, ctx);
    },
  };
}

/** `"a"`, `"a" or "b"`, `"a", "b" or "c"`. */
export function describeChoices(values: readonly string[]): string {
  const shown = values.map((value) => JSON.stringify(value));
  if (shown.length <= 1) return shown.join('');
  return `${shown.slice(0, -1).join(', ')} or ${shown[shown.length - 1]}`;
}
