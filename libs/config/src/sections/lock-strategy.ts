import { type KeyPath, tableHeader } from '../key-path.js';
import { integer, redisUrl, string } from '../scalars.js';
import {
  INVALID,
  isTable,
  optional,
  type ReadContext,
  required,
  SCALAR,
  type Schema,
  table,
  withDefault,
} from '../schema.js';
import type { FsLockStrategy, RedisLockConfig, S3LockConfig, S3LockStrategy } from '../types.js';

/** `[….lock_strategy.redis]`: shared by the fs and S3 metadata stores. */
export const redisLockSchema = table<RedisLockConfig>({
  url: required(redisUrl()),
  ttl: required(integer('usize', { nonZero: true })),
  key_prefix: optional(string()),
  max_retries: withDefault(integer('u32'), 100),
  retry_delay_ms: withDefault(integer('u64'), 10),
});

/** `[metadata_store.s3.lock_strategy.s3]`: locks held through S3 conditional writes. */
export const s3LockSchema = table<S3LockConfig>(
  {
    ttl_secs: withDefault(integer('u64', { min: 9 }), 30),
    max_retries: withDefault(integer('u32'), 100),
    retry_delay_ms: withDefault(integer('u64', { min: 1 }), 50),
    max_hold_secs: withDefault(integer('u64', { min: 10 }), 300),
    operation_timeout_secs: withDefault(integer('u64', { nonZero: true }), 15),
    operation_attempt_timeout_secs: withDefault(integer('u64', { nonZero: true }), 4),
    max_attempts: withDefault(integer('u32', { min: 1 }), 2),
  },
  {
    check(lock, at) {
      if (lock.max_hold_secs < lock.ttl_secs) {
        at.error('max_hold_secs', `must be at least ttl_secs (${lock.ttl_secs})`);
      }
      // A stuck request must not outlast one heartbeat interval, or the lock can lapse while held.
      const heartbeatSecs = lock.ttl_secs / 3;
      const worstCaseSecs = lock.operation_attempt_timeout_secs * lock.max_attempts;
      if (worstCaseSecs >= heartbeatSecs) {
        at.warn(
          [],
          `operation_attempt_timeout_secs × max_attempts (${worstCaseSecs}s) is not below the heartbeat ` +
            `interval ttl_secs / 3 (${heartbeatSecs}s); one stuck request can outlast a heartbeat`,
        );
      }
    },
  },
);

type Backend = 'fs' | 's3';

const TABLE_FORMS: Readonly<Record<Backend, Readonly<Record<string, Schema<unknown>>>>> = {
  fs: { redis: redisLockSchema },
  s3: { s3: s3LockSchema, redis: redisLockSchema },
};

/**
 * `lock_strategy` is either the string `"memory"` or a table naming one backend
 * (`[….lock_strategy.redis]`, and on S3 metadata `[….lock_strategy.s3]`). The backends with
 * settings have no bare-string form: their settings live in the table.
 */
function lockStrategy<T>(backend: Backend): Schema<T> {
  const forms = TABLE_FORMS[backend];
  return {
    shape: {
      kind: 'union',
      variants: [SCALAR, { kind: 'table', fields: forms, legacy: [] }],
    },
    read(raw, path, ctx) {
      if (typeof raw === 'string') return readStringForm(raw, backend, path, ctx) as T | typeof INVALID;
      if (!isTable(raw)) {
        ctx.error(path, expectedMessage(backend, path));
        return INVALID;
      }
      let chosen: { key: string; value: unknown } | undefined;
      let valid = true;
      for (const key of Object.keys(raw)) {
        const schema = Object.hasOwn(forms, key) ? forms[key] : undefined;
        if (!schema) {
          ctx.error([...path, key], key === 's3' ? s3OnFilesystem() : 'unknown option');
          valid = false;
          continue;
        }
        const value = schema.read(raw[key], [...path, key], ctx);
        if (value === INVALID) valid = false;
        else chosen ??= { key, value };
      }
      const named = Object.keys(raw).filter((key) => Object.hasOwn(forms, key));
      if (named.length > 1) {
        ctx.error(path, `configure only one lock strategy (found ${named.join(' and ')})`);
        return INVALID;
      }
      if (!valid) return INVALID;
      if (!chosen) {
        ctx.error(path, expectedMessage(backend, path));
        return INVALID;
      }
      return { [chosen.key]: chosen.value } as T;
    },
  };
}

function readStringForm(
  raw: string,
  backend: Backend,
  path: KeyPath,
  ctx: ReadContext,
): 'memory' | typeof INVALID {
  if (raw === 'memory') return 'memory';
  if (raw === 's3' && backend === 'fs') ctx.error(path, s3OnFilesystem());
  else if (raw === 's3' || raw === 'redis') {
    ctx.error(
      path,
      `the bare string "${raw}" is not supported; use the table form ${tableHeader([...path, raw])}` +
        (raw === 's3' ? ' (an empty table accepts the defaults)' : ' with url and ttl'),
    );
  } else ctx.error(path, expectedMessage(backend, path));
  return INVALID;
}

function expectedMessage(backend: Backend, path: KeyPath): string {
  const tables = Object.keys(TABLE_FORMS[backend]).map((key) => tableHeader([...path, key]));
  return `expected "memory" or a table ${tables.join(' or ')}`;
}

function s3OnFilesystem(): string {
  return 'S3 locking is not supported for the filesystem metadata store; use "memory" or [metadata_store.fs.lock_strategy.redis]';
}

export const fsLockStrategySchema: Schema<FsLockStrategy> = lockStrategy<FsLockStrategy>('fs');
export const s3LockStrategySchema: Schema<S3LockStrategy> = lockStrategy<S3LockStrategy>('s3');

/** The lock backend a strategy selects, for comparisons and feature checks. */
export function lockBackend(strategy: FsLockStrategy | S3LockStrategy): 'memory' | 'redis' | 's3' {
  if (strategy === 'memory') return 'memory';
  return 'redis' in strategy ? 'redis' : 's3';
}
