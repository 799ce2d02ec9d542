/**
 * The extension API as the UI reads it (docs/extension-api.md): one type per response body.
 * Times are RFC 3339 strings or null; sizes are bytes.
 */

export interface UiConfig {
  readonly name: string;
  readonly version: string;
  readonly username: string | null;
}

/** A configured `[repository."<name>"]`. */
export interface RepositoryEntry {
  readonly name: string;
  readonly namespaces: number;
  readonly is_pull_through: boolean;
  readonly immutable_tags: boolean;
  readonly downstreams: readonly string[];
}

export interface NamespaceEntry {
  readonly path: string;
  readonly name: string;
  /** It holds tags or revisions itself (a pure prefix does not, and has null counts). */
  readonly is_namespace: boolean;
  readonly has_children: boolean;
  readonly tags: number | null;
  readonly manifests: number | null;
  readonly uploads: number | null;
  readonly repository: string | null;
  readonly is_pull_through: boolean;
}

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string | null;
  readonly 'os.version'?: string;
}

export interface TagDetail {
  readonly name: string;
  readonly digest: string;
  readonly media_type: string;
  readonly artifact_type: string | null;
  readonly size: number;
  readonly platforms: readonly Platform[];
  readonly pushed_at: string | null;
  readonly last_pulled_at: string | null;
}

export interface Revision {
  readonly digest: string;
  readonly media_type: string;
  readonly artifact_type: string | null;
  readonly size: number;
  readonly tags: readonly string[];
  readonly parents: readonly string[];
  readonly subject: string | null;
  readonly pushed_at: string | null;
  readonly last_pulled_at: string | null;
}

export interface Descriptor {
  readonly digest: string;
  readonly media_type: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: Platform;
  readonly artifact_type?: string;
}

export interface Referrer {
  readonly digest: string;
  readonly media_type: string;
  readonly artifact_type: string | null;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>> | null;
}

export interface ManifestDetail {
  readonly digest: string;
  readonly media_type: string;
  readonly artifact_type: string | null;
  readonly size: number;
  readonly tags: readonly string[];
  readonly annotations: Readonly<Record<string, string>>;
  readonly config: Descriptor | null;
  readonly layers: readonly Descriptor[];
  readonly manifests: readonly Descriptor[];
  readonly subject: Descriptor | null;
  readonly referrers: readonly Referrer[];
  readonly parents: readonly string[];
  readonly pushed_at: string | null;
  readonly last_pulled_at: string | null;
}

export interface Upload {
  readonly id: string;
  readonly size: number;
  readonly started_at: string | null;
}

export interface Job {
  readonly id: string;
  readonly queue: string;
  readonly kind: string;
  readonly lockKey?: string | null;
  readonly createdAt: string;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly notBefore?: string | null;
  readonly lastError?: string | null;
  readonly payload: unknown;
  /** Pending jobs: true while a worker runs it. */
  readonly claimed?: boolean;
  /** Failed jobs: when it was dead-lettered. */
  readonly failedAt?: string;
}

/** The queues of the jobs API (JOB_QUEUES of @angos/jobs). */
export const JOB_QUEUES = ['cache', 'replication'] as const;
export type JobQueue = (typeof JOB_QUEUES)[number];
export type JobState = 'pending' | 'failed';

/** One page of a listing: its entries and the `last` marker of the next page, if another follows. */
export interface Page<T> {
  readonly items: readonly T[];
  readonly next: string | undefined;
  /** The listing's total where the endpoint tells it (tags, revisions). */
  readonly total?: number;
}

export type TagSort = 'name' | 'pushed';
export type SortOrder = 'asc' | 'desc';
