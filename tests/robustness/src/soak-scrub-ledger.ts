/**
 * What the scrub soak knows for certain: every tag a push was acknowledged for (tag → manifest
 * digest and the blobs it references), and every manifest retention says it deleted. A pull that
 * fails is only excused by that record: the manifest it asked for was deleted by a scrub run that
 * had started before the pull failed. Anything else is a broken pull, so a real loss is never
 * mistaken for retention at work.
 */

/** One acknowledged push: the registry answered 201 to the manifest PUT. */
export interface AcknowledgedTag {
  readonly namespace: string;
  readonly tag: string;
  /** The manifest's digest, `sha256:…`. */
  readonly digest: string;
  /** Config and layer digests, each pulled and hashed by every pull of the tag. */
  readonly blobs: readonly string[];
  readonly acknowledgedAt: number;
}

/** A pull that did not get its bytes (a 404), judged once every scrub run's log is read. */
export interface SuspectPull {
  readonly tag: AcknowledgedTag;
  readonly at: number;
  readonly detail: string;
}

/** What one scrub run's log says, line by line (JSON, as `angos scrub` writes it on stderr). */
export interface ScrubLogFacts {
  /** `namespace@digest` of each manifest retention deleted (a `repaired delete-manifest` line). */
  readonly deleted: string[];
  /** Repairs by `check action` (retention and the others), for the report. */
  readonly repairs: Record<string, number>;
  /** `repair failed` and `scrub check failed` lines. */
  readonly failures: string[];
}

const REVISION_LINK = /^(.+)\/_manifests\/revisions\/(sha256)\/([0-9a-f]{64})\/link$/;

const manifestId = (namespace: string, digest: string) => `${namespace}@${digest}`;

/**
 * Reads one run's stderr. Retention logs `repaired` for every delete-manifest action it applied,
 * even when the registry left the manifest in place (pushed or listed again since the decision,
 * or already gone); it says so first in a `retention left a manifest in place` line. Only the
 * manifests without such a line count as deleted.
 */
export function parseScrubLog(stderr: string): ScrubLogFacts {
  const leftInPlace = new Set<string>();
  const deleted: string[] = [];
  const repairs: Record<string, number> = {};
  const failures: string[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const message = record['message'];
    if (message === 'retention left a manifest in place') {
      leftInPlace.add(manifestId(String(record['namespace']), String(record['digest'])));
    } else if (message === 'repaired') {
      const what = `${record['check']} ${record['action']}`;
      repairs[what] = (repairs[what] ?? 0) + 1;
      const link = REVISION_LINK.exec(String(record['key']));
      if (record['action'] === 'delete-manifest' && link) {
        const id = manifestId(link[1]!, `${link[2]}:${link[3]}`);
        if (!leftInPlace.has(id)) deleted.push(id);
      }
    } else if (message === 'repair failed' || message === 'scrub check failed') {
      failures.push(line.slice(0, 400));
    }
  }
  return { deleted, repairs, failures };
}

export class Ledger {
  readonly acknowledged: AcknowledgedTag[] = [];
  readonly suspects: SuspectPull[] = [];
  /** Manifest id → start time of the first scrub run that deleted it. */
  readonly #deletions = new Map<string, number>();
  #nextUnpulled = 0;

  acknowledge(tag: AcknowledgedTag): void {
    this.acknowledged.push(tag);
  }

  /** The oldest acknowledged tag not yet pulled once, so every tag is pulled during the run. */
  takeUnpulled(): AcknowledgedTag | undefined {
    const next = this.acknowledged[this.#nextUnpulled];
    if (next) this.#nextUnpulled++;
    return next;
  }

  suspect(pull: SuspectPull): void {
    this.suspects.push(pull);
  }

  /** Records the manifests a scrub run that started at `runStartedAt` deleted. */
  recordDeletions(deleted: readonly string[], runStartedAt: number): void {
    for (const id of deleted) {
      if (!this.#deletions.has(id)) this.#deletions.set(id, runStartedAt);
    }
  }

  get deletions(): number {
    return this.#deletions.size;
  }

  /** Whether retention deleted the tag's manifest in a run that started at or before `at`. */
  deletedBy(tag: AcknowledgedTag, at: number): boolean {
    const startedAt = this.#deletions.get(manifestId(tag.namespace, tag.digest));
    return startedAt !== undefined && startedAt <= at;
  }

  /** Suspect pulls no deletion explains: broken pulls. */
  unexcused(): SuspectPull[] {
    return this.suspects.filter((pull) => !this.deletedBy(pull.tag, pull.at));
  }
}
