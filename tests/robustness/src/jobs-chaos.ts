/**
 * The job queue chaos run: worker processes (jobs-chaos-worker.js) drain a queue on a shared store
 * and lock while they are SIGKILLed at random and restarted; the jobs are enqueued by another
 * process, a replica of its own. Afterwards the run logs, the kill times and the store must show
 * that every job completed, that no two runs of one lock key overlapped while the earlier one's
 * holder lived, that a job ran again only after its previous holder died (or was cut off from its
 * lock, and stopped), and that nothing is left under `_jobs/` nor in the lock backend.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type MetadataStore, NotFoundError } from '@angos/storage';
import { random, repoRoot } from '@angos/test-support';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { describeBackend, type JobLockSpec, type JobStoreSpec, openJobStore } from './jobs-backend.js';
import type { ChaosEnqueueConfig, ChaosWorkerConfig, EnqueuedLine } from './jobs-chaos-worker.js';
import { type RunRecord, type RunsVerdict, verifyRuns } from './jobs-runs.js';

export interface JobsChaosOptions {
  /** Enqueues (some share a lock key and join a pending job, so the jobs may be fewer). */
  readonly jobs: number;
  /** Worker processes (3). */
  readonly workers?: number;
  /** SIGKILLs per worker. */
  readonly killsPerWorker: number;
  readonly seed: number;
  readonly store: JobStoreSpec;
  readonly lock: JobLockSpec;
  /** Jobs each worker runs at once (2). */
  readonly concurrency?: number;
  /** Each run sleeps a random time in this range, ms ([50, 600]). */
  readonly sleepMs?: readonly [number, number];
  /** Gap between two kills, ms, drawn in this range ([300, 1500]). */
  readonly killGapMs?: readonly [number, number];
  /**
   * Called once, when at least `afterStarts` runs have started and one is in its handler
   * (restart Redis or RGW under running jobs).
   */
  readonly midRun?:
    | {
        readonly afterStarts: number;
        readonly action: () => Promise<void>;
        /** The action takes the store away (RGW restart): see `problems`. */
        readonly storeOutage?: boolean | undefined;
      }
    | undefined;
  /** How long the queue may take to drain once the kills are over (default 5 min). */
  readonly drainTimeoutMs?: number;
  readonly log?: (line: string) => void;
  /** Keep the work directory (run logs, worker logs) when the run fails (default true). */
  readonly keepOnFailure?: boolean;
}

export interface JobsChaosReport extends RunsVerdict {
  readonly backend: string;
  readonly enqueued: number;
  readonly deduplicated: number;
  /** Distinct jobs enqueued. */
  readonly jobs: number;
  readonly kills: number;
  /** Keys left under `_jobs/<queue>` after the drain (must be none). */
  readonly leftInStore: string[];
  /** fs: temp files of writers killed mid-write under `_jobs/<queue>` (never listed, never removed). */
  readonly tempFiles: number | undefined;
  /** Locks held after the drain by a live worker, or left by one that was not killed (must be none). */
  readonly leftLocks: string[];
  /**
   * S3 lock objects written by a live worker that nobody holds or renews. An acquisition cut
   * short while its create was in flight no longer leaves one (libs/lock lets the create finish
   * and gives the key back). What can remain: a create whose every attempt timed out on the
   * client, landing on S3 only after the lock looked for it and found nothing. The key is blocked
   * until the object is stale (TTL + 1 s) and taken over; if no job uses the key again the object
   * stays. No job runs twice for it: reported, not failed on.
   */
  readonly orphanedLocks: string[];
  /** Runs in their handlers when the mid-run action began. */
  readonly inFlightAtMidRun: number | undefined;
  /** Workers that exited by themselves, or did not stop cleanly on SIGTERM (must be none). */
  readonly workerFailures: string[];
  readonly seconds: number;
  /** Where the run logs are, when kept. */
  readonly workDir?: string | undefined;
}

/**
 * Every key (value) under a prefix, recursively. A prefix that lists nothing is no key: on fs it
 * is a directory that holds only the temp files of writers killed mid-write (see tempFilesUnder).
 */
export async function everythingUnder(store: MetadataStore, prefix: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await store.list(prefix)) {
    const path = `${prefix}/${name}`;
    const below = await everythingUnder(store, path);
    if (below.length > 0) found.push(...below);
    else if (await isValue(store, path)) found.push(path);
  }
  return found;
}

async function isValue(store: MetadataStore, path: string): Promise<boolean> {
  try {
    await store.get(path);
    return true;
  } catch (error) {
    if (error instanceof NotFoundError) return false;
    throw error;
  }
}

/**
 * The temp files (`.tmp-*`) under a directory of the fs store: a writer SIGKILLed between writing
 * its temp file and linking or renaming it leaves one. The store never lists them; nothing
 * removes them either, and the directory they are in stays.
 */
async function tempFilesUnder(dir: string): Promise<number> {
  let count = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory()) count += await tempFilesUnder(join(dir, entry.name));
    else if (entry.name.startsWith('.tmp-')) count++;
  }
  return count;
}

function workerScript(): string {
  return join(repoRoot(), 'tests', 'robustness', 'dist', 'jobs-chaos-worker.js');
}

interface Spawned {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the worker script with `config`, its stderr into `logFile`; stdout lines go to `onLine`. */
function spawnScript(
  config: ChaosWorkerConfig | ChaosEnqueueConfig,
  logFile: string,
  onLine: (line: string) => void,
): Spawned {
  // stdin stays open while this process lives: the script exits when it closes, so that no worker
  // outlives a run that was interrupted (a test timeout, ^C).
  const child = spawn(process.execPath, [workerScript(), JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stderr?.pipe(createWriteStream(logFile));
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited };
}

async function tail(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-8).join('\n');
}

/** One worker slot: a process, replaced by a new one after each kill. */
class Slot {
  current: Spawned | undefined;
  incarnation = 0;
  killsLeft: number;
  #expectedExit = false;

  constructor(
    readonly index: number,
    readonly config: ChaosWorkerConfig,
    readonly logsDir: string,
    killsLeft: number,
    readonly onFailure: (message: string) => void,
  ) {
    this.killsLeft = killsLeft;
  }

  /** Starts a new process and waits until its runner polls. */
  async start(): Promise<void> {
    this.incarnation++;
    this.#expectedExit = false;
    const logFile = join(this.logsDir, `worker-${this.index}-${this.incarnation}.log`);
    let ready: () => void = () => {};
    const isReady = new Promise<void>((resolve) => {
      ready = resolve;
    });
    const spawned = spawnScript(this.config, logFile, (line) => line === 'ready' && ready());
    this.current = spawned;
    void spawned.exited.then(async ({ code, signal }) => {
      if (!this.#expectedExit)
        this.onFailure(
          `worker ${this.index}#${this.incarnation} (pid ${spawned.child.pid}) exited by itself (${signal ?? `exit ${code}`}):\n${await tail(logFile)}`,
        );
    });
    const started = await Promise.race([
      isReady.then(() => true),
      spawned.exited.then(() => false),
      sleep(120_000, undefined, { ref: false }).then(() => false),
    ]);
    if (!started) throw new Error(`worker ${this.index} did not start:\n${await tail(logFile)}`);
  }

  /** SIGKILL; resolves with the time just before the signal (the holder lived until at least then). */
  async kill(): Promise<{ pid: number; at: number }> {
    const spawned = this.current as Spawned;
    this.#expectedExit = true;
    const pid = spawned.child.pid as number;
    const at = Date.now();
    spawned.child.kill('SIGKILL');
    await spawned.exited;
    return { pid, at };
  }

  /** SIGTERM: the runner stops, in-flight jobs finish; the process must exit 0 within the grace. */
  async stop(): Promise<void> {
    const spawned = this.current;
    if (spawned === undefined || spawned.child.exitCode !== null || spawned.child.signalCode !== null) return;
    this.#expectedExit = true;
    spawned.child.kill('SIGTERM');
    const result = await Promise.race([
      spawned.exited,
      sleep(40_000, undefined, { ref: false }).then(() => undefined),
    ]);
    if (result === undefined) {
      spawned.child.kill('SIGKILL');
      await spawned.exited;
      this.onFailure(`worker ${this.index} did not stop within 40 s of SIGTERM`);
    } else if (result.code !== 0) {
      this.onFailure(`worker ${this.index} stopped with ${result.signal ?? `exit ${result.code}`}`);
    }
  }

  /** For cleanup after a failure. */
  forceKill(): void {
    this.#expectedExit = true;
    const child = this.current?.child;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** The lock keys to enqueue: mostly distinct, a fifth drawn from a few shared keys. */
function lockKeysFor(jobs: number, next: () => number): string[] {
  const shared = Math.max(2, Math.round(jobs / 40));
  return Array.from({ length: jobs }, (_, i) =>
    next() < 0.2 ? `shared:${Math.floor(next() * shared)}` : `job:${i}`,
  );
}

/** Locks still present: Redis keys of the prefix, or S3 lock objects not owned by a killed process. */
interface LocksLeft {
  /** Held: Redis keys, or S3 lock objects of live workers renewed within the TTL. */
  readonly held: string[];
  /** S3 lock objects of live workers that nobody renews (see JobsChaosReport.orphanedLocks). */
  readonly orphaned: string[];
}

async function leftLocks(lock: JobLockSpec, killedPids: ReadonlySet<number>): Promise<LocksLeft> {
  if (lock.kind === 'redis') {
    const redis = new Redis(lock.url, { maxRetriesPerRequest: 3 });
    try {
      return { held: await redis.keys(`${lock.keyPrefix}:*`), orphaned: [] };
    } finally {
      redis.disconnect();
    }
  }
  // A killed holder's lock object stays until another worker takes that key over; nobody may
  // hold one now, and every object left must be a killed process's.
  const client = new S3Client({
    endpoint: lock.s3.endpoint,
    region: lock.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: lock.s3.accessKeyId, secretAccessKey: lock.s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    const held: string[] = [];
    const orphaned: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({
          Bucket: lock.s3.bucket,
          Prefix: `${lock.keyPrefix}/_locks/`,
          ContinuationToken: token,
        }),
      );
      for (const entry of page.Contents ?? []) {
        // The scratch object of a worker killed while probing the bucket's conditional writes: no lock.
        if (entry.Key?.includes('/_locks/.probe-')) continue;
        const object = await client
          .send(new GetObjectCommand({ Bucket: lock.s3.bucket, Key: entry.Key }))
          .catch((error: unknown) => {
            if ((error as Error).name === 'NoSuchKey') return undefined; // released since the listing
            throw error;
          });
        if (object === undefined) continue;
        const body = (await object.Body?.transformToString()) ?? '';
        const owner = (JSON.parse(body) as { owner?: string }).owner ?? '';
        const pid = Number(owner.split(':').at(-1));
        if (killedPids.has(pid)) continue;
        // A held lock is renewed every ttl / 3; one untouched for longer than the TTL is no lease.
        const age = Date.now() - (object.LastModified?.getTime() ?? Date.now());
        (age > lock.ttlSecs * 1000 + 1000 ? orphaned : held).push(
          `${entry.Key} (owner ${owner}, ${Math.round(age / 1000)} s old)`,
        );
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return { held, orphaned };
  } finally {
    client.destroy();
  }
}

async function readRuns(runDir: string): Promise<RunRecord[]> {
  const records: RunRecord[] = [];
  for (const file of await readdir(runDir)) {
    // The part after the last newline is a line still being written (or nothing).
    for (const line of (await readFile(join(runDir, file), 'utf8')).split('\n').slice(0, -1)) {
      const [type, run, id, lockKey, pid, at] = line.split(' ');
      if (type !== 'start' && type !== 'end' && type !== 'abort')
        throw new Error(`bad run log line: ${line}`);
      records.push({
        type,
        run: run as string,
        id: id as string,
        lockKey: lockKey as string,
        pid: Number(pid),
        at: Number(at),
      });
    }
  }
  return records;
}

export async function jobsChaos(options: JobsChaosOptions): Promise<JobsChaosReport> {
  const log = options.log ?? (() => {});
  const next = random(options.seed);
  const workers = options.workers ?? 3;
  const queueName = `chaos-${randomBytes(4).toString('hex')}`;
  const workDir = await mkdtemp(join(tmpdir(), 'angos-jobs-chaos-'));
  const runDir = join(workDir, 'runs');
  const logsDir = join(workDir, 'logs');
  await mkdir(runDir);
  await mkdir(logsDir);
  const started = Date.now();
  const backend = describeBackend(options.store, options.lock);
  const store = await openJobStore(options.store);
  const workerFailures: string[] = [];
  const killed = new Map<number, number>();
  const workerConfig: ChaosWorkerConfig = {
    mode: 'worker',
    store: options.store,
    lock: options.lock,
    queue: queueName,
    concurrency: options.concurrency ?? 2,
    pollIntervalMs: options.store.kind === 'fs' ? 100 : 250,
    sleepMs: options.sleepMs ?? [50, 600],
    runDir,
  };
  const slots = Array.from(
    { length: workers },
    (_, i) =>
      new Slot(i, workerConfig, logsDir, options.killsPerWorker, (message) => {
        workerFailures.push(message);
        log(message);
      }),
  );
  let failed = true;
  try {
    log(`${backend}: starting ${workers} workers (work dir ${workDir})`);
    await Promise.all(slots.map((slot) => slot.start()));

    // The jobs come from another process: a replica that only enqueues.
    const lockKeys = lockKeysFor(options.jobs, next);
    const enqueued: EnqueuedLine[] = [];
    const enqueuer = spawnScript(
      { mode: 'enqueue', store: options.store, queue: queueName, lockKeys, batch: 10, pauseMs: 100 },
      join(logsDir, 'enqueuer.log'),
      (line) => enqueued.push(JSON.parse(line) as EnqueuedLine),
    );
    const enqueueDone = enqueuer.exited.then(async ({ code, signal }) => {
      if (code !== 0)
        throw new Error(
          `the enqueuer failed (${signal ?? `exit ${code}`}):\n${await tail(join(logsDir, 'enqueuer.log'))}`,
        );
      log(`${backend}: ${enqueued.length} enqueued`);
    });

    const midRun = options.midRun;
    let inFlightAtMidRun: number | undefined;
    const midRunDone = midRun
      ? (async () => {
          for (;;) {
            const records = await readRuns(runDir);
            const starts = records.filter((record) => record.type === 'start').length;
            // Runs of live processes that have not ended (a killed process's runs never end).
            const over = new Set(
              records.filter((record) => record.type !== 'start').map((record) => record.run),
            );
            const inFlight = records.filter(
              (record) => record.type === 'start' && !over.has(record.run) && !killed.has(record.pid),
            ).length;
            if (starts >= midRun.afterStarts && inFlight > 0) {
              inFlightAtMidRun = inFlight;
              break;
            }
            await sleep(50);
          }
          log(`${backend}: mid-run action with ${inFlightAtMidRun} runs in their handlers`);
          await midRun.action();
        })()
      : Promise.resolve();

    // The kills begin once jobs run (enqueues on S3 take a while to arrive).
    const firstRun = Date.now() + 60_000;
    while ((await readRuns(runDir)).length === 0 && Date.now() < firstRun) await sleep(100);
    // Kills: a random live worker with kills left, after a random gap, then its replacement.
    const [minGap, maxGap] = options.killGapMs ?? [300, 1500];
    let kills = 0;
    for (;;) {
      const candidates = slots.filter((slot) => slot.killsLeft > 0);
      if (candidates.length === 0) break;
      await sleep(minGap + next() * (maxGap - minGap));
      const slot = candidates[Math.floor(next() * candidates.length)] as Slot;
      const { pid, at } = await slot.kill();
      killed.set(pid, at);
      slot.killsLeft--;
      kills++;
      if (kills % 10 === 0 || kills === workers * options.killsPerWorker) log(`${backend}: ${kills} kills`);
      await slot.start();
    }
    await enqueueDone;
    await midRunDone;

    // Drained: no pending job, claim, lock key marker, failure or quarantined record.
    const queuePrefix = `_jobs/${queueName}`;
    const deadline = Date.now() + (options.drainTimeoutMs ?? 300_000);
    let left = await everythingUnder(store, queuePrefix);
    while (left.length > 0 && Date.now() < deadline) {
      if (left.some((key) => key.includes('/failed/') || key.includes('/quarantine/'))) break;
      await sleep(250);
      left = await everythingUnder(store, queuePrefix);
    }
    log(
      `${backend}: ${left.length === 0 ? 'drained' : `${left.length} keys left`} after ${((Date.now() - started) / 1000).toFixed(0)} s`,
    );

    // Idle workers hold no lock. A run's lock is released just after its records are gone, and a
    // killed worker's Redis lock lapses after the TTL: give both that long, then none may be left.
    const killedPids = new Set(killed.keys());
    const lockDeadline = Date.now() + options.lock.ttlSecs * 1000 + 5000;
    let locksLeft = await leftLocks(options.lock, killedPids);
    const atDrain = locksLeft.held.length + locksLeft.orphaned.length;
    while (locksLeft.held.length + locksLeft.orphaned.length > 0 && Date.now() < lockDeadline) {
      await sleep(500);
      locksLeft = await leftLocks(options.lock, killedPids);
    }
    if (atDrain > 0)
      log(
        `${backend}: ${atDrain} locks present at the drain; after the TTL ${locksLeft.held.length} held, ${locksLeft.orphaned.length} orphaned`,
      );
    await Promise.all(slots.map((slot) => slot.stop()));

    const records = await readRuns(runDir);
    const verdict = verifyRuns(records, new Set(enqueued.map((line) => line.id)), killed);
    const report: JobsChaosReport = {
      backend,
      enqueued: enqueued.length,
      deduplicated: enqueued.filter((line) => line.deduplicated).length,
      jobs: new Set(enqueued.map((line) => line.id)).size,
      kills,
      leftInStore: left,
      tempFiles:
        options.store.kind === 'fs'
          ? await tempFilesUnder(join(options.store.rootDir, queuePrefix))
          : undefined,
      leftLocks: locksLeft.held,
      orphanedLocks: locksLeft.orphaned,
      workerFailures,
      inFlightAtMidRun,
      seconds: (Date.now() - started) / 1000,
      ...verdict,
    };
    failed = problems(report, { storeOutage: options.midRun?.storeOutage }).length > 0;
    return { ...report, workDir: failed && options.keepOnFailure !== false ? workDir : undefined };
  } finally {
    for (const slot of slots) slot.forceKill();
    await store.deletePrefix(`_jobs/${queueName}`).catch(() => {});
    await store.close?.();
    if (!failed || options.keepOnFailure === false) await rm(workDir, { recursive: true, force: true });
    else log(`${backend}: run logs kept in ${workDir}`);
  }
}

/**
 * Everything that makes a run fail, one line each. `storeOutage`: the store was restarted, so a
 * run that ended may not have recorded it, and its job runs again (never at the same time), and
 * an enqueue that failed half-way may have left a job that was never reported.
 */
export function problems(
  report: JobsChaosReport,
  { storeOutage = false }: { storeOutage?: boolean | undefined } = {},
): string[] {
  return [
    ...report.lost,
    ...report.concurrent,
    ...(storeOutage ? [] : [...report.rerunsWhileHolderLived, ...report.unknownRuns]),
    ...report.leftInStore.map((key) => `left in the store: ${key}`),
    ...report.leftLocks.map((lock) => `lock left: ${lock}`),
    ...report.workerFailures,
  ];
}

/** One line of a report. */
export function summarize(report: JobsChaosReport): string {
  return (
    `${report.backend}: ${report.enqueued} enqueued (${report.deduplicated} joined a pending job), ${report.jobs} jobs, ` +
    `${report.kills} kills (${report.interruptingKills} interrupted a run), ` +
    `${report.inFlightAtMidRun === undefined ? '' : `mid-run action under ${report.inFlightAtMidRun} running jobs, `}${report.runs} runs ` +
    `(${report.rerunsAfterKill} again after their holder was killed, ${report.cutOff} cut off from a lost lock, ` +
    `${report.rerunsWhileHolderLived.length} again after a run that ended on a live worker, ${report.unknownRuns.length} of jobs not reported enqueued), ` +
    `${report.lost.length} lost, ${report.concurrent.length} concurrent, ${report.tempFiles === undefined ? '' : `${report.tempFiles} temp files of killed writers, `}${report.leftInStore.length} keys and ${report.leftLocks.length} locks left${report.orphanedLocks.length > 0 ? ` (and ${report.orphanedLocks.length} orphaned lock objects: ${report.orphanedLocks.join(', ')})` : ''}, ` +
    `${report.workerFailures.length} worker failures, ${report.seconds.toFixed(0)} s`
  );
}
