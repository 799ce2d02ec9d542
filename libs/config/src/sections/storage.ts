import { formatKeyPath } from '../key-path.js';
import { boolean, httpUrl, integer, nonEmptyString, size, string } from '../scalars.js';
import {
  type Fields,
  INVALID,
  isTable,
  legacyKey,
  optional,
  required,
  type Schema,
  table,
  withDefault,
} from '../schema.js';
import { sizeOf } from '../size.js';
import type {
  FsBlobStoreConfig,
  FsMetadataStoreConfig,
  S3BlobStoreConfig,
  S3CapabilitiesConfig,
  S3ConnectionConfig,
  S3MetadataStoreConfig,
} from '../types.js';
import { fsLockStrategySchema, lockBackend, redisLockSchema, s3LockStrategySchema } from './lock-strategy.js';

/** S3 requires every part but the last to be at least 5 MiB; UploadPartCopy parts at most 5 GiB. */
const S3_MIN_PART = sizeOf('5MiB');
const S3_MAX_COPY_PART = sizeOf('5GiB');

/** Connection and retry options shared by `[blob_store.s3]` and `[metadata_store.s3]`. */
const s3ConnectionFields: Fields<S3ConnectionConfig> = {
  access_key_id: required(nonEmptyString()),
  secret_key: required(nonEmptyString()),
  endpoint: required(httpUrl()),
  bucket: required(nonEmptyString()),
  region: required(nonEmptyString()),
  key_prefix: optional(string()),
  max_attempts: withDefault(integer('u32', { min: 1 }), 3),
  operation_timeout_secs: withDefault(integer('u64', { nonZero: true }), 900),
  operation_attempt_timeout_secs: withDefault(integer('u64', { nonZero: true }), 300),
};

export const S3_CONNECTION_OPTIONS: readonly string[] = Object.keys(s3ConnectionFields);

export const fsBlobStoreSchema = table<FsBlobStoreConfig>({
  root_dir: required(nonEmptyString()),
  sync_to_disk: withDefault(boolean(), false),
});

export const s3BlobStoreSchema = table<S3BlobStoreConfig>({
  ...s3ConnectionFields,
  multipart_part_size: withDefault(size({ min: S3_MIN_PART }), sizeOf('50MiB')),
  multipart_copy_threshold: withDefault(size({ nonZero: true }), sizeOf('5GB')),
  multipart_copy_chunk_size: withDefault(size({ min: S3_MIN_PART, max: S3_MAX_COPY_PART }), sizeOf('100MB')),
  multipart_copy_jobs: withDefault(integer('usize', { min: 1 }), 4),
  multipart_uniform_parts: withDefault(boolean(), false),
});

/** `[metadata_store.fs]` as written: `root_dir` may be left to follow the blob store. */
export type FsMetadataStoreInput = Omit<FsMetadataStoreConfig, 'root_dir'> & { root_dir?: string };

export const fsMetadataStoreSchema = table<FsMetadataStoreInput>(
  {
    root_dir: optional(nonEmptyString()),
    sync_to_disk: withDefault(boolean(), false),
    lock_strategy: withDefault(fsLockStrategySchema, 'memory'),
  },
  {
    // The storage guide's older spelling `[metadata_store.fs.redis]`.
    legacy: {
      redis: legacyKey<FsMetadataStoreInput, 'lock_strategy', unknown>(
        'lock_strategy',
        redisLockSchema,
        (redis) => ({ redis }) as FsMetadataStoreInput['lock_strategy'],
        'deprecated; use [metadata_store.fs.lock_strategy.redis]',
      ),
    },
  },
);

export const s3CapabilitiesSchema = table<S3CapabilitiesConfig>({
  put_if_none_match: optional(boolean()),
  put_if_match: optional(boolean()),
  delete_if_match: optional(boolean()),
});

/** The conditional writes the S3 (CAS) lock strategy cannot work without. */
const CAS_REQUIRED_CAPABILITIES = ['put_if_none_match', 'put_if_match'] as const;

const BLOB_ONLY_HINT = 'multipart settings apply to [blob_store.s3] only';

export const s3MetadataStoreSchema = table<S3MetadataStoreConfig>(
  {
    ...s3ConnectionFields,
    link_cache_ttl: withDefault(integer('u64'), 30),
    access_time_debounce_secs: withDefault(integer('u64'), 60),
    lock_strategy: withDefault(s3LockStrategySchema, 'memory'),
    capabilities: optional(s3CapabilitiesSchema),
  },
  {
    legacy: {
      redis: legacyKey<S3MetadataStoreConfig, 'lock_strategy', unknown>(
        'lock_strategy',
        redisLockSchema,
        (redis) => ({ redis }) as S3MetadataStoreConfig['lock_strategy'],
        'deprecated; use [metadata_store.s3.lock_strategy.redis]',
      ),
    },
    hints: Object.fromEntries(
      [
        'multipart_part_size',
        'multipart_copy_threshold',
        'multipart_copy_chunk_size',
        'multipart_copy_jobs',
        'multipart_uniform_parts',
      ].map((key) => [key, BLOB_ONLY_HINT]),
    ),
    check(store, at) {
      const usesS3Lock = lockBackend(store.lock_strategy) === 's3';
      // Declared capabilities skip the startup probe, so they must satisfy the lock strategy now.
      if (usesS3Lock && store.capabilities) {
        for (const capability of CAS_REQUIRED_CAPABILITIES) {
          if (store.capabilities[capability] !== true) {
            at.error(
              ['capabilities', capability],
              'must be true for lock_strategy.s3 (or omit [capabilities] to probe at startup)',
            );
          }
        }
      }
      if (usesS3Lock && store.access_time_debounce_secs === 0) {
        at.warn(
          'access_time_debounce_secs',
          '0 with the S3 lock strategy makes every manifest pull a full lock, read, write, release cycle on S3; keep 60 or more',
        );
      }
    },
  },
);

export type BackendChoice<F, S> = { fs: F; s3?: undefined } | { s3: S; fs?: undefined };

/**
 * `[<section>.fs]` or `[<section>.s3]`, exactly one. Both are still read when both are given, so
 * their own problems are reported in the same round.
 */
export function backendChoice<F, S>(fs: Schema<F>, s3: Schema<S>): Schema<BackendChoice<F, S>> {
  const backends: Readonly<Record<string, Schema<unknown>>> = { fs, s3 };
  return {
    shape: { kind: 'table', fields: backends, legacy: [] },
    read(raw, path, ctx) {
      if (!isTable(raw)) {
        ctx.error(path, 'expected table');
        return INVALID;
      }
      const section = formatKeyPath(path);
      const chosen: Record<string, unknown> = {};
      let valid = true;
      for (const key of Object.keys(raw)) {
        const schema = Object.hasOwn(backends, key) ? backends[key] : undefined;
        if (!schema) {
          ctx.error([...path, key], 'unknown option');
          valid = false;
          continue;
        }
        const value = schema.read(raw[key], [...path, key], ctx);
        if (value === INVALID) valid = false;
        else chosen[key] = value;
      }
      const present = Object.keys(raw).filter((key) => Object.hasOwn(backends, key));
      if (present.length === 0) {
        ctx.error(path, `expected [${section}.fs] or [${section}.s3]`);
        return INVALID;
      }
      if (present.length > 1) {
        ctx.error(path, `configure only one of [${section}.fs] or [${section}.s3]`);
        return INVALID;
      }
      return valid ? (chosen as BackendChoice<F, S>) : INVALID;
    },
  };
}

export const blobStoreSchema = backendChoice(fsBlobStoreSchema, s3BlobStoreSchema);
export const metadataStoreSchema = backendChoice(fsMetadataStoreSchema, s3MetadataStoreSchema);
