/**
 * The typed configuration. Keys are spelled exactly as in config.toml (snake_case), so an option
 * has one name everywhere: `max_blob_size` in TOML is `config.global.max_blob_size` in code.
 * Sizes are numbers of bytes; durations keep the unit their name says (`_secs`, `_ms`).
 * Every documented default is filled in, so consumers never apply defaults themselves.
 */

export interface Config {
  server: ServerConfig;
  global: GlobalConfig;
  cache: CacheConfig;
  blob_store: BlobStoreConfig;
  /** Resolved: when `[metadata_store]` is absent it mirrors the blob store's backend. */
  metadata_store: MetadataStoreConfig;
  auth: AuthConfig;
  repository: Record<string, RepositoryConfig>;
  event_webhook: Record<string, EventWebhookConfig>;
  observability: ObservabilityConfig;
  ui: UiConfig;
  services: ServicesConfig;
  gc: GcConfig;
}

// --- [server] ---------------------------------------------------------------------------------

export interface ServerConfig {
  bind_address: string;
  port: number;
  /** Seconds, non-zero. */
  query_timeout: number;
  /** Seconds, non-zero. */
  query_timeout_grace_period: number;
  /** Serving threads on the service's port; absent: one per CPU the process may use (at startup). */
  workers?: number | undefined;
  /** Absent: plain HTTP. */
  tls?: TlsConfig;
}

export interface TlsConfig {
  server_certificate_bundle: string;
  server_private_key: string;
  /** Enables mTLS client verification. */
  client_ca_bundle?: string;
}

// --- [global] ---------------------------------------------------------------------------------

export interface GlobalConfig {
  max_concurrent_requests: number;
  max_concurrent_cache_jobs: number;
  max_concurrent_replication_jobs: number;
  /** Bytes. */
  max_manifest_size: number;
  /** Bytes. */
  max_blob_size: number;
  update_pull_time: boolean;
  /** Deprecated: only the fallback for the two fields below; read those instead. */
  enable_redirect?: boolean;
  /** Resolved: `enable_blob_redirect ?? enable_redirect ?? true`. */
  enable_blob_redirect: boolean;
  /** Resolved: `enable_manifest_redirect ?? enable_redirect ?? true`. */
  enable_manifest_redirect: boolean;
  immutable_tags: boolean;
  /** Regex sources, already checked to compile with `new RegExp(pattern)`. */
  immutable_tags_exclusions: string[];
  allow_missing_manifest_references: boolean;
  authorization_webhook?: string;
  event_webhooks: string[];
  /** Present: jobs are drained by `angos worker` processes; absent: drained in-process. */
  job_queue?: JobQueueConfig;
  access_policy: AccessPolicyConfig;
  retention_policy: RetentionPolicyConfig;
}

export interface JobQueueConfig {
  pending_refresh_interval_secs: number;
  pending_ready_horizon_secs: number;
}

export type PolicyDefault = 'allow' | 'deny';

export interface AccessPolicyConfig {
  default: PolicyDefault;
  /** CEL expressions. */
  rules: string[];
}

export interface RetentionPolicyConfig {
  /** CEL expressions. */
  rules: string[];
}

// --- [cache] ----------------------------------------------------------------------------------

export interface CacheConfig {
  /** Absent: in-memory token/key cache (single instance only). */
  redis?: RedisCacheConfig;
}

export interface RedisCacheConfig {
  url: string;
  key_prefix?: string;
  /**
   * Authenticates every entry Angos stores in Redis (HMAC-SHA256). Absent: JWKS, discovery
   * documents and webhook decisions stay in each process's memory instead.
   */
  hmac_key?: string;
}

// --- [blob_store] / [metadata_store] ------------------------------------------------------------

/** Exactly one backend table is present; narrow with `if (config.blob_store.fs)`. */
export type BlobStoreConfig =
  | { fs: FsBlobStoreConfig; s3?: undefined }
  | { s3: S3BlobStoreConfig; fs?: undefined };

export interface FsBlobStoreConfig {
  /** Relative paths resolve against the process's working directory. */
  root_dir: string;
  sync_to_disk: boolean;
}

/** The options `[blob_store.s3]` and `[metadata_store.s3]` share. */
export interface S3ConnectionConfig {
  access_key_id: string;
  secret_key: string;
  endpoint: string;
  bucket: string;
  region: string;
  key_prefix?: string;
  max_attempts: number;
  operation_timeout_secs: number;
  operation_attempt_timeout_secs: number;
}

export interface S3BlobStoreConfig extends S3ConnectionConfig {
  /** Bytes, at least 5 MiB (the S3 minimum for non-final parts). */
  multipart_part_size: number;
  /** Bytes. */
  multipart_copy_threshold: number;
  /** Bytes, between 5 MiB and 5 GiB (S3 UploadPartCopy limits). */
  multipart_copy_chunk_size: number;
  multipart_copy_jobs: number;
  multipart_uniform_parts: boolean;
}

export type MetadataStoreConfig =
  | { fs: FsMetadataStoreConfig; s3?: undefined }
  | { s3: S3MetadataStoreConfig; fs?: undefined };

export interface FsMetadataStoreConfig {
  /** Resolved: defaults to `blob_store.fs.root_dir`. */
  root_dir: string;
  sync_to_disk: boolean;
  lock_strategy: FsLockStrategy;
}

export interface S3MetadataStoreConfig extends S3ConnectionConfig {
  /** Seconds; 0 disables the link cache. */
  link_cache_ttl: number;
  /** Seconds; 0 disables access-time write batching. */
  access_time_debounce_secs: number;
  lock_strategy: S3LockStrategy;
  /** Absent: probed at startup. */
  capabilities?: S3CapabilitiesConfig;
}

/** `lock_strategy = "memory"` or `[….lock_strategy.redis]`; S3 locks need an S3 metadata store. */
export type FsLockStrategy = 'memory' | { redis: RedisLockConfig };
/** `lock_strategy = "memory"`, `[….lock_strategy.redis]` or `[….lock_strategy.s3]`. */
export type S3LockStrategy = 'memory' | { redis: RedisLockConfig } | { s3: S3LockConfig };
export type LockStrategy = FsLockStrategy | S3LockStrategy;

export interface RedisLockConfig {
  url: string;
  /** Seconds. */
  ttl: number;
  key_prefix?: string;
  max_retries: number;
  retry_delay_ms: number;
}

export interface S3LockConfig {
  /** At least 9; the heartbeat renews every ttl_secs / 3. */
  ttl_secs: number;
  max_retries: number;
  /** At least 1. */
  retry_delay_ms: number;
  /** At least 10 and at least ttl_secs. */
  max_hold_secs: number;
  operation_timeout_secs: number;
  operation_attempt_timeout_secs: number;
  max_attempts: number;
}

export interface S3CapabilitiesConfig {
  put_if_none_match?: boolean;
  put_if_match?: boolean;
  delete_if_match?: boolean;
}

// --- [auth] -----------------------------------------------------------------------------------

export interface AuthConfig {
  identity: Record<string, IdentityConfig>;
  oidc: Record<string, OidcConfig>;
  webhook: Record<string, AuthWebhookConfig>;
  /** Argon2 verifications running at once, each on a worker thread of its own (≥ 1). */
  password_verify_concurrency: number;
  /** Verifications that may wait for a worker; past it a request is refused with 503. */
  password_verify_queue: number;
  /** Failed password logins per client address in a window before 429; 0 turns the limit off. */
  failed_auth_limit: number;
  /** Seconds, non-zero: the window `failed_auth_limit` counts in. */
  failed_auth_window_secs: number;
}

export interface IdentityConfig {
  username: string;
  /** Argon2 PHC hash, syntax already checked. */
  password: string;
}

export type OidcConfig = GithubOidcConfig | GenericOidcConfig;

interface OidcCommonConfig {
  jwks_refresh_interval: number;
  required_audience?: string;
  clock_skew_tolerance: number;
  allowed_algorithms: string[];
}

export interface GithubOidcConfig extends OidcCommonConfig {
  provider: 'github';
  issuer: string;
  jwks_uri: string;
}

export interface GenericOidcConfig extends OidcCommonConfig {
  provider: 'generic';
  issuer: string;
  /** Absent: discovered from the issuer. */
  jwks_uri?: string;
}

export interface AuthWebhookConfig {
  url: string;
  timeout_ms: number;
  bearer_token?: string;
  basic_auth?: BasicAuthConfig;
  client_certificate_bundle?: string;
  client_private_key?: string;
  server_ca_bundle?: string;
  forward_headers: string[];
  /** Seconds; 0 disables. */
  cache_ttl: number;
}

export interface BasicAuthConfig {
  username: string;
  password: string;
}

// --- [repository."<namespace>"] ----------------------------------------------------------------

/** Optional keys are absent when the repository inherits the `[global]` value. */
export interface RepositoryConfig {
  immutable_tags?: boolean;
  immutable_tags_exclusions?: string[];
  /** `""` disables the global authorization webhook for this repository. */
  authorization_webhook?: string;
  event_webhooks?: string[];
  upstream: UpstreamConfig[];
  /**
   * Project-specific, pull-through only: least seconds between two upstream checks (HEAD) of one
   * mutable tag; a pull in between is served from the cache.
   */
  upstream_tag_check_interval_secs: number;
  /**
   * Project-specific, pull-through only: how long after its last successful upstream check a
   * cached tag is still served while every upstream fails. Absent: no limit.
   */
  upstream_stale_tag_window_secs?: number;
  downstream: DownstreamConfig[];
  access_policy?: AccessPolicyConfig;
  retention_policy?: RetentionPolicyConfig;
}

export interface UpstreamConfig {
  url: string;
  max_redirect: number;
  server_ca_bundle?: string;
  client_certificate?: string;
  client_private_key?: string;
  username?: string;
  password?: string;
}

export type DownstreamMode = 'event+reconcile' | 'event-only' | 'reconcile-only';

export interface DownstreamConfig {
  name: string;
  url: string;
  mode: DownstreamMode;
  /** Regex sources; empty matches every namespace. */
  namespace_filter: string[];
  max_concurrent_pushes: number;
  prune: boolean;
  max_redirect: number;
  username?: string;
  password?: string;
  server_ca_bundle?: string;
  client_certificate?: string;
  client_private_key?: string;
}

// --- [event_webhook.<name>] ---------------------------------------------------------------------

export type EventWebhookPolicy = 'required' | 'optional' | 'async';
export type EventKind =
  | 'manifest.push'
  | 'manifest.pull'
  | 'manifest.delete'
  | 'blob.push'
  | 'blob.pull'
  | 'tag.create'
  | 'tag.delete';

export interface EventWebhookConfig {
  url: string;
  policy: EventWebhookPolicy;
  events: EventKind[];
  token?: string;
  timeout_ms: number;
  max_retries: number;
  /** Regex sources; absent matches every repository. */
  repository_filter?: string[];
}

// --- [observability] / [ui] / [services] --------------------------------------------------------

export interface ObservabilityConfig {
  tracing?: TracingConfig;
}

export interface TracingConfig {
  endpoint: string;
  /** 0.0 – 1.0. */
  sampling_rate: number;
}

export interface UiConfig {
  enabled: boolean;
  name: string;
}

/** Project-specific: how the split deployment's services find and trust each other. */
export interface ServicesConfig {
  /** Where the gateway forwards registry API requests in the split deployment. */
  registry_api_url?: string;
  /** Where the gateway forwards the namespaces of pull-through repositories in the split deployment. */
  pull_through_cache_url?: string;
  /** Shared secret the gateway presents to vouch for the requests it forwards. */
  internal_token?: string;
}

/** Project-specific: online garbage collection (`[gc]`). */
export interface GcConfig {
  /** How long a grant or a blob must have had no reference before a pass may reclaim it. */
  grace_period_secs: number;
  /** How often `angos server` runs a pass in the background; 0: never (run `angos scrub --blobs`). */
  interval_secs: number;
}
