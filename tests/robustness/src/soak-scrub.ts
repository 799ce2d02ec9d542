/**
 * The scrub soak (issue 2.5, "safe online"): clients push images that share layers across images
 * and namespaces, pull every acknowledged tag and every blob of it through every replica, while
 * `angos scrub -t -m -b -r -l` runs in a loop as separate processes, with a retention rule that
 * keeps the 3 most recently pushed tags of each namespace and a gc grace period of 2 s. At the end
 * the load stops, scrub runs twice more (a grace period apart, so anything wrongly left
 * unreferenced is reclaimed), and every acknowledged tag that retention did not delete is pulled
 * once more from every replica. The verdict: no broken pull (a pull of a kept tag that failed or
 * whose bytes do not hash to their digest) and no 5xx, during the run or after it.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cliEntry, OutputTail, random, terminate, track } from '@angos/test-support';
import type { S3Location } from './s3-toml.js';
import { type Cluster, type ScrubSoakSetup, startCluster } from './soak-scrub-cluster.js';
import { type AcknowledgedTag, Ledger, parseScrubLog } from './soak-scrub-ledger.js';

export interface ScrubSoakOptions {
  readonly setup: ScrubSoakSetup;
  /** How long the load and the scrub loop run. */
  readonly seconds: number;
  /**
   * What the load must have done before it ends: past `seconds` it goes on until it has, for at most
   * `seconds` more (a loaded machine pushes and scrubs slower; the judgement needs the race).
   */
  readonly atLeast?: { readonly pushes: number; readonly scrubRuns: number } | undefined;
  readonly seed: number;
  /** The S3 server of the `s3` setup. */
  readonly s3?: S3Location | undefined;
  /** Concurrent pushing clients (default 3). */
  readonly pushers?: number;
  /** Concurrent pulling clients (default 3). */
  readonly pullers?: number;
  /**
   * Acknowledged pushes per second at most, all pushers together (default 5): the store grows no
   * faster than scrub's retention can cut it, so an hour-long run stays the same test throughout.
   */
  readonly pushesPerSecond?: number;
  /** Tag pulls per second at most, all pullers together (default 25). */
  readonly pullsPerSecond?: number;
  /** Layers shared by the images of every namespace (default 12); fewer means more contention. */
  readonly sharedLayers?: number;
  /** Namespaces pushed to (default 4). */
  readonly namespaces?: number;
  /** `[gc] grace_period_secs` (default 2). */
  readonly gracePeriodSecs?: number;
  /** Tags retention keeps per namespace, `top_pushed(n)` (default 3). */
  readonly keep?: number;
  readonly log?: (line: string) => void;
  /** Where each scrub run's log and, at the end, each replica's output tail are written. */
  readonly logDir?: string | undefined;
}

export interface ScrubSoakReport {
  readonly setup: ScrubSoakSetup;
  /** Acknowledged pushes (201 to the manifest PUT). */
  pushes: number;
  /** Pushes refused with a 4xx (a layer reclaimed between the client's HEAD and its manifest PUT). */
  pushesRefused: number;
  /** Blobs a push did not upload: already there (HEAD) or mounted from another namespace. */
  blobsReused: number;
  /** Manifest pulls by tag during the run, and blob pulls. */
  pulls: number;
  blobPulls: number;
  /** Pulls during the run that failed because retention had deleted the manifest. */
  excusedPulls: number;
  /** `angos scrub` runs, the two final ones included. */
  scrubRuns: number;
  /** Of those, the runs handed off to a server (`fs-memory`: every one). */
  handedOffRuns: number;
  /** Runs that exited non-zero or logged a failed repair or check. */
  scrubFailures: string[];
  /** Repairs the runs logged, by `check action`. */
  repairs: Record<string, number>;
  /** Manifests retention deleted (with their tags). */
  retentionDeletes: number;
  /** Kept tags pulled from every replica at the end. */
  finalTags: number;
  /** Answers with a 5xx, or none at all. */
  serverErrors: string[];
  /** Pulls of a kept tag that failed, or bytes that do not hash to their digest. */
  brokenPulls: string[];
  /** Replicas that exited during the run. */
  deadReplicas: string[];
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const SCRUB_ARGS = ['scrub', '-t', '-m', '-b', '-r', '-l'];
const SCRUB_TIMEOUT_MS = 300_000;
const MAX_ERRORS = 200;

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Spaces calls to `take` so that they happen at most `perSecond` times a second, in all. */
function pacer(perSecond: number): () => Promise<void> {
  let nextAt = Date.now();
  return async () => {
    const at = Math.max(nextAt, Date.now());
    nextAt = at + 1000 / perSecond;
    await sleep(Math.max(0, at - Date.now()));
  };
}

interface Reply {
  url: string;
  status: number;
  location: string | null;
  body: Buffer;
}

/** One HTTP exchange; `undefined` when nothing answered (refused, reset, 60 s without an answer). */
async function send(
  method: string,
  url: string,
  options: { body?: Buffer; headers?: Record<string, string>; follow?: boolean } = {},
): Promise<Reply | { status: undefined; error: string }> {
  try {
    const response = await fetch(url, {
      method,
      ...(options.body ? { body: options.body } : {}),
      headers: options.headers ?? {},
      // GETs follow the 307 to storage (S3 presigned URLs) as a client would; HEADs take it as a yes.
      redirect: options.follow ? 'follow' : 'manual',
      signal: AbortSignal.timeout(60_000),
    });
    return {
      url,
      status: response.status,
      location: response.headers.get('location'),
      body: Buffer.from(await response.arrayBuffer()),
    };
  } catch (error) {
    return { status: undefined, error: `${method} ${url}: ${String(error)}` };
  }
}

interface Blob {
  readonly digest: string;
  readonly bytes: Buffer;
  readonly mediaType: string;
}

const blobOf = (bytes: Buffer, mediaType: string): Blob => ({ digest: sha256(bytes), bytes, mediaType });

class ScrubSoak {
  readonly report: ScrubSoakReport;
  readonly ledger = new Ledger();
  readonly #next: () => number;
  readonly #namespaces: string[];
  readonly #layers: Blob[];
  #stopped = false;

  constructor(
    readonly options: ScrubSoakOptions,
    readonly cluster: Cluster,
  ) {
    this.#next = random(options.seed);
    this.#namespaces = Array.from({ length: options.namespaces ?? 4 }, (_, index) => `soak-scrub/n${index}`);
    // Layers shared by images of every namespace: the ones garbage collection must keep.
    this.#layers = Array.from({ length: options.sharedLayers ?? 12 }, () =>
      blobOf(
        randomBytes(1024 + Math.floor(this.#next() * 96 * 1024)),
        'application/vnd.oci.image.layer.v1.tar',
      ),
    );
    this.report = {
      setup: options.setup,
      pushes: 0,
      pushesRefused: 0,
      blobsReused: 0,
      pulls: 0,
      blobPulls: 0,
      excusedPulls: 0,
      scrubRuns: 0,
      handedOffRuns: 0,
      scrubFailures: [],
      repairs: {},
      retentionDeletes: 0,
      finalTags: 0,
      serverErrors: [],
      brokenPulls: [],
      deadReplicas: [],
    };
  }

  get stopped(): boolean {
    return (
      this.#stopped ||
      this.report.serverErrors.length + this.report.brokenPulls.length > MAX_ERRORS ||
      this.cluster.dead().length > 0
    );
  }

  stop(): void {
    this.#stopped = true;
  }

  #pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.#next() * items.length)]!;
  }

  /** A replica picked at random: clients behind a load balancer. */
  replica(): string {
    return this.#pick(this.cluster.replicas).url;
  }

  /** True when the answer is usable; a 5xx or no answer is recorded as a server error. */
  #answered(what: string, reply: Awaited<ReturnType<typeof send>>): reply is Reply {
    if (reply.status === undefined) {
      this.report.serverErrors.push(`${what}: ${reply.error}`);
      return false;
    }
    if (reply.status >= 500) {
      this.report.serverErrors.push(`${what}: ${reply.status} ${reply.body.toString('utf8', 0, 300)}`);
      return false;
    }
    return true;
  }

  // --- pushes ------------------------------------------------------------------------------------

  async push(worker: number, sequence: number): Promise<void> {
    const namespace = this.#pick(this.#namespaces);
    const tag = `w${worker}-${sequence}`;
    const config = blobOf(
      Buffer.from(JSON.stringify({ os: 'linux', tag, nonce: randomBytes(8).toString('hex') })),
      'application/vnd.oci.image.config.v1+json',
    );
    const layers = new Set<Blob>();
    const shared = 1 + Math.floor(this.#next() * 3);
    while (layers.size < shared) layers.add(this.#pick(this.#layers));
    if (this.#next() < 0.4)
      layers.add(
        blobOf(
          randomBytes(512 + Math.floor(this.#next() * 16 * 1024)),
          'application/vnd.oci.image.layer.v1.tar',
        ),
      );
    const how: string[] = [];
    for (const blob of [config, ...layers]) {
      if (!(await this.#upload(namespace, blob, how))) {
        this.report.pushesRefused++;
        return;
      }
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: config.mediaType, digest: config.digest, size: config.bytes.length },
        layers: [...layers].map((layer) => ({
          mediaType: layer.mediaType,
          digest: layer.digest,
          size: layer.bytes.length,
        })),
      }),
    );
    const put = await send('PUT', `${this.replica()}/v2/${namespace}/manifests/${tag}`, {
      body: manifest,
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    if (!this.#answered(`PUT ${namespace}:${tag}`, put)) return;
    if (put.status !== 201) {
      this.report.pushesRefused++;
      this.options.log?.(
        `push of ${namespace}:${tag} to ${put.url} refused: ${put.status} ${put.body.toString('utf8', 0, 1000).trim()}; blobs: ${how.join(', ')}`,
      );
      return;
    }
    this.report.pushes++;
    this.ledger.acknowledge({
      namespace,
      tag,
      digest: sha256(manifest),
      blobs: [config.digest, ...[...layers].map((layer) => layer.digest)],
      acknowledgedAt: Date.now(),
    });
  }

  /** As a client does: HEAD first, then a cross-namespace mount or a monolithic upload. */
  async #upload(namespace: string, blob: Blob, how: string[]): Promise<boolean> {
    const base = this.replica();
    const head = await send('HEAD', `${base}/v2/${namespace}/blobs/${blob.digest}`);
    if (!this.#answered(`HEAD blob ${namespace}`, head)) return false;
    if (head.status === 200 || head.status === 307) {
      how.push(`${blob.digest.slice(7, 19)} HEAD ${head.status} at ${base}`);
      this.report.blobsReused++;
      return true;
    }
    how.push(`${blob.digest.slice(7, 19)} uploaded to ${base}`);
    if (this.#layers.includes(blob) && this.#next() < 0.3) {
      const from = this.#pick(this.#namespaces.filter((other) => other !== namespace));
      const mount = await send(
        'POST',
        `${base}/v2/${namespace}/blobs/uploads/?mount=${blob.digest}&from=${from}`,
      );
      if (!this.#answered(`mount blob ${namespace}`, mount)) return false;
      if (mount.status === 201) {
        this.report.blobsReused++;
        return true;
      }
      if (mount.status === 202 && mount.location) {
        const target = new URL(mount.location, base);
        target.searchParams.set('digest', blob.digest);
        const put = await send('PUT', target.href, { body: blob.bytes });
        return this.#answered(`PUT upload ${namespace}`, put) && put.status === 201;
      }
      return false;
    }
    const post = await send('POST', `${base}/v2/${namespace}/blobs/uploads/?digest=${blob.digest}`, {
      body: blob.bytes,
    });
    return this.#answered(`POST blob ${namespace}`, post) && post.status === 201;
  }

  // --- pulls -------------------------------------------------------------------------------------

  /** The next tag to pull: every acknowledged tag once, then recent ones, sometimes any. */
  nextPull(): AcknowledgedTag | undefined {
    const unpulled = this.ledger.takeUnpulled();
    if (unpulled) return unpulled;
    const all = this.ledger.acknowledged;
    if (all.length === 0) return undefined;
    return this.#next() < 0.8 ? this.#pick(all.slice(-30)) : this.#pick(all);
  }

  /**
   * Pulls the tag and every blob of it from `base`. A 404 is a suspect, judged at the end against
   * retention's log (`final`: no scrub runs any more, so it is broken unless already deleted).
   */
  async pull(tag: AcknowledgedTag, base: string, final: boolean): Promise<void> {
    const name = `${tag.namespace}:${tag.tag}`;
    const failed = (detail: string) => {
      const at = Date.now();
      if (final)
        this.report.brokenPulls.push(`final pull of ${name} (${tag.digest}) from ${base}: ${detail}`);
      else
        this.ledger.suspect({ tag, at, detail: `pull of ${name} (${tag.digest}) from ${base}: ${detail}` });
    };
    if (!final) this.report.pulls++;
    const manifest = await send('GET', `${base}/v2/${tag.namespace}/manifests/${tag.tag}`, {
      headers: { Accept: OCI_MANIFEST },
      follow: true,
    });
    if (!this.#answered(`GET manifest ${name}`, manifest)) return;
    if (manifest.status !== 200) return failed(`manifest ${manifest.status}`);
    if (sha256(manifest.body) !== tag.digest) {
      this.report.brokenPulls.push(`${name} from ${base}: manifest bytes hash to ${sha256(manifest.body)}`);
      return;
    }
    for (const digest of tag.blobs) {
      if (!final) this.report.blobPulls++;
      const blob = await send('GET', `${base}/v2/${tag.namespace}/blobs/${digest}`, { follow: true });
      if (!this.#answered(`GET blob ${name} ${digest}`, blob)) return;
      if (blob.status !== 200) return failed(`blob ${digest} ${blob.status}`);
      if (sha256(blob.body) !== digest) {
        this.report.brokenPulls.push(
          `${name} from ${base}: blob ${digest} bytes hash to ${sha256(blob.body)}`,
        );
        return;
      }
    }
  }

  // --- scrub -------------------------------------------------------------------------------------

  /** One `angos scrub -t -m -b -r -l` process to its end; its log recorded in the ledger. */
  async scrub(): Promise<void> {
    const startedAt = Date.now();
    const child = spawn(process.execPath, [cliEntry(), '-c', this.cluster.configPath, ...SCRUB_ARGS], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, RUST_LOG: 'info' },
    });
    track(child);
    const stderr = new OutputTail(64 * 1024 * 1024);
    child.stderr!.on('data', (chunk: Buffer) => stderr.write(chunk));
    const timer = setTimeout(() => void terminate(child), SCRUB_TIMEOUT_MS);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('exit', (exitCode, exitSignal) => resolve([exitCode, exitSignal])),
    );
    clearTimeout(timer);
    const run = ++this.report.scrubRuns;
    const text = stderr.toString();
    if (this.options.logDir) await writeFile(join(this.options.logDir, `scrub-${run}.log`), text);
    const facts = parseScrubLog(text);
    this.ledger.recordDeletions(facts.deleted, startedAt);
    for (const [what, count] of Object.entries(facts.repairs))
      this.report.repairs[what] = (this.report.repairs[what] ?? 0) + count;
    if (code !== 0 || facts.failures.length > 0) {
      const tail = stderr.toString().split('\n').slice(-5).join('\n');
      this.report.scrubFailures.push(
        `run ${run}: exit ${code ?? signal}; ${facts.failures.slice(0, 5).join('; ') || tail}`,
      );
    }
    this.report.retentionDeletes = this.ledger.deletions;
  }
}

export async function soakScrub(options: ScrubSoakOptions): Promise<ScrubSoakReport> {
  const log = options.log ?? (() => undefined);
  const gracePeriodSecs = options.gracePeriodSecs ?? 2;
  if (options.logDir) await mkdir(options.logDir, { recursive: true });
  const cluster = await startCluster({
    setup: options.setup,
    s3: options.s3,
    gracePeriodSecs,
    keep: options.keep ?? 3,
  });
  const soak = new ScrubSoak(options, cluster);
  const { report } = soak;
  try {
    const endsAt = Date.now() + options.seconds * 1000;
    const latestEnd = endsAt + options.seconds * 1000;
    const enough = () =>
      options.atLeast === undefined ||
      (report.pushes >= options.atLeast.pushes && report.scrubRuns >= options.atLeast.scrubRuns);
    const running = () => {
      if (soak.stopped) return false;
      const now = Date.now();
      return now < endsAt || (now < latestEnd && !enough());
    };
    const pushPace = pacer(options.pushesPerSecond ?? 5);
    const pullPace = pacer(options.pullsPerSecond ?? 25);
    const pushers = Array.from({ length: options.pushers ?? 3 }, async (_, worker) => {
      for (let sequence = 0; running(); sequence++) {
        await pushPace();
        if (running()) await soak.push(worker, sequence);
      }
    });
    const pullers = Array.from({ length: options.pullers ?? 3 }, async () => {
      while (running()) {
        await pullPace();
        const tag = soak.nextPull();
        if (tag) await soak.pull(tag, soak.replica(), false);
        else await sleep(50);
      }
    });
    const scrubLoop = (async () => {
      while (running()) {
        await soak.scrub();
        await sleep(250);
      }
    })();
    const progress = setInterval(() => {
      log(
        `${options.setup}: pushes=${report.pushes} refused=${report.pushesRefused} pulls=${report.pulls} ` +
          `scrub runs=${report.scrubRuns} deletes=${report.retentionDeletes} suspects=${soak.ledger.suspects.length} ` +
          `5xx=${report.serverErrors.length} broken=${report.brokenPulls.length}`,
      );
    }, 5000);
    try {
      await Promise.all([...pushers, ...pullers, scrubLoop]);
      // The pulls every acknowledged tag was promised, if the load ended before they were taken.
      for (let tag = soak.ledger.takeUnpulled(); tag; tag = soak.ledger.takeUnpulled())
        await soak.pull(tag, cluster.replicas[0]!.url, false);
    } finally {
      clearInterval(progress);
    }
    report.deadReplicas = cluster.dead();
    // Quiet now: two more runs a grace period apart, so whatever a race left unreferenced is
    // really reclaimed before the final pulls look for it.
    await soak.scrub();
    await sleep((gracePeriodSecs + 1) * 1000);
    await soak.scrub();
    const judgedAt = Date.now();
    const unexcused = soak.ledger.unexcused();
    report.excusedPulls = soak.ledger.suspects.length - unexcused.length;
    report.brokenPulls.push(...unexcused.map((pull) => pull.detail));
    for (const tag of soak.ledger.acknowledged) {
      if (soak.ledger.deletedBy(tag, judgedAt)) continue;
      report.finalTags++;
      for (const replica of cluster.replicas) await soak.pull(tag, replica.url, true);
    }
    report.deadReplicas = [...new Set([...report.deadReplicas, ...cluster.dead()])];
    report.handedOffRuns = cluster.replicas.reduce((sum, replica) => sum + replica.handoffs(), 0);
    if (options.logDir) {
      for (const replica of cluster.replicas)
        await writeFile(join(options.logDir, `replica-${replica.name}.log`), replica.output.toString());
      await writeFile(
        join(options.logDir, 'acknowledged.json'),
        JSON.stringify(soak.ledger.acknowledged, null, 1),
      );
    }
    if (report.brokenPulls.length + report.serverErrors.length > 0 || report.deadReplicas.length > 0)
      log(cluster.logs().slice(-20_000));
    return report;
  } finally {
    soak.stop();
    await cluster.stop();
  }
}
