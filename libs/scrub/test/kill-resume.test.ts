import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { isTempName } from '@angos/storage';
import { cliEntry } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KINDS, openStore, type Store, type StoreCopy, seedFaults, seedHealthy } from './support.js';

/**
 * `angos scrub` is resumable (issue 2.5): a run SIGKILLed at random moments, three times, then run
 * to the end, leaves the store exactly as one uninterrupted run leaves an identical copy; a
 * further run then finds nothing. Every repair re-decides under its locks from what the store
 * holds, so a repair cut short is found again, or its remainder is, by the next run.
 * The real process (services/cli/dist/main.js), on fs and on S3.
 */

const CHECKS = ['-t', '-m', '-l', '-M', '-R', '-u', '1h', '-b'];
/** Namespaces seeded with faults (SCRUB_KILL_NAMESPACES for fs): a run takes some seconds. */
const FS_NAMESPACES = Number(process.env['SCRUB_KILL_NAMESPACES'] ?? 30);
/** Fewer on S3, where each key is a request (seeding takes longer than the runs). */
const S3_NAMESPACES = 6;

/** With CHECKS, every other check of this build: a healthy store must come out of all at once unchanged. */
const HEALTHY_EXTRA = [
  '-r',
  '--reconcile-blob-index',
  '--orphan-grants',
  '1h',
  '--orphan-namespaces',
  '--cache-orphans',
];

/** The CLI needs a `[server]` table even to scrub. */
const SERVER = '[server]\nbind_address = "127.0.0.1"\n';

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  /** When it was spawned, and how long it ran (ms). */
  readonly startedAt: number;
  readonly ms: number;
}

/** Runs `angos -c <config> scrub …`; SIGKILLed after `killAfterMs` when given. */
async function scrub(config: string, args: readonly string[], killAfterMs?: number): Promise<Run> {
  const started = Date.now();
  const child: ChildProcess = spawn(process.execPath, [cliEntry(), '-c', config, 'scrub', ...args], {
    env: { ...process.env, RUST_LOG: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const killer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  // A hung run fails the test rather than the suite; generous, as a run takes seconds alone but
  // minutes on a 2-core machine that is busy with much else.
  const guard = setTimeout(() => child.kill('SIGKILL'), 400_000);
  const [code, signal] = await exited;
  clearTimeout(killer);
  clearTimeout(guard);
  return { code, signal, stderr, startedAt: started, ms: Date.now() - started };
}

function records(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** mulberry32: a small seeded generator, so that a failing order of kills can be replayed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The marks of a blob-index entry that hold times (libs/registry blob-index.ts). */
const TIME_MARKS = ['_orphaned', '_revoked', '_empty'];

/**
 * What of a key's bytes depends on the clock of the run that wrote it, left out: the times of a
 * blob-index entry's marks, and the creation time of a link scrub rewrote (`rewrite-link` writes
 * one of its own, libs/registry encodeLink) — any `created_at` at or after `since`.
 */
function withoutTimes(since: number): (key: string, data: Buffer) => Buffer {
  return (key, data) => {
    // A temp file a kill left may be empty or half-written; durableTree drops it after this.
    if (isTempName(basename(key))) return data;
    if (key.startsWith('_blob_index/')) {
      const entry = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
      for (const mark of TIME_MARKS) {
        const value = entry[mark];
        if (typeof value === 'number') entry[mark] = 'time';
        else if (value !== undefined) {
          entry[mark] = Object.fromEntries(
            Object.keys(value as object).map((namespace) => [namespace, 'time']),
          );
        }
      }
      return Buffer.from(JSON.stringify(entry));
    }
    if (key.endsWith('/link')) {
      let link: Record<string, unknown>;
      try {
        link = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
      } catch {
        return data;
      }
      const created = typeof link['created_at'] === 'string' ? Date.parse(link['created_at']) : Number.NaN;
      if (created >= since) return Buffer.from(JSON.stringify({ ...link, created_at: 'scrub time' }));
    }
    return data;
  };
}

/**
 * The store as the two runs must agree on it: no temp files (a process killed mid-write leaves
 * young ones, for a later run), and no times a run writes from its own clock.
 */
async function durableTree(store: StoreCopy, since: number): Promise<Map<string, string>> {
  const tree = await store.tree(withoutTimes(since));
  for (const key of tree.keys()) if (isTempName(basename(key))) tree.delete(key);
  return tree;
}

describe.each(KINDS)('angos scrub killed and resumed, on %s', (kind) => {
  /** Namespaces seeded with one fault of each kind: enough that a run takes seconds. */
  const namespaces = kind === 'fs' ? FS_NAMESPACES : S3_NAMESPACES;
  let seeded: Store;
  const copies: StoreCopy[] = [];
  const configs: string[] = [];
  beforeAll(async () => {
    seeded = await openStore(kind);
    for (let i = 0; i < namespaces; i++) await seedFaults(seeded, `team-${i}/app`);
  }, 600_000);
  afterAll(async () => {
    for (const copy of copies) await copy.remove();
    for (const config of configs) await rm(dirname(config), { recursive: true, force: true });
    await seeded?.close();
  }, 300_000);

  /** A copy of the seeded store and the configuration of an `angos` over it. */
  async function copyOfSeeded(): Promise<{ store: StoreCopy; config: string }> {
    const store = await seeded.copy();
    copies.push(store);
    const config = join(await mkdtemp(join(tmpdir(), 'angos-scrub-config-')), 'config.toml');
    configs.push(config);
    await writeFile(config, `${SERVER}${store.storeConfig}`);
    return { store, config };
  }

  it('converges, after three SIGKILLs at random moments, to what one uninterrupted run leaves', async () => {
    const whole = await copyOfSeeded();
    const killed = await copyOfSeeded();

    const since = Date.now();
    const reference = await scrub(whole.config, CHECKS);
    expect(reference.code, reference.stderr).toBe(0);
    const planned = records(reference.stderr).filter((record) => record['message'] === 'repaired');
    expect(planned.length).toBeGreaterThan(namespaces * 8);
    // Kills land while the reference run was repairing: before, the process is still loading;
    // after, on S3, the garbage-collection pass of --blobs takes most of the run but changes
    // little of a store seeded moments ago (on fs, where it is short, it is in the window).
    const at = (record: Record<string, unknown> | undefined) =>
      Date.parse(String(record?.['timestamp'])) - reference.startedAt;
    const firstRepairMs = at(planned[0]);
    const windowEndMs = kind === 'fs' ? reference.ms : at(planned.at(-1));

    const seed = Number(process.env['SCRUB_KILL_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
    const random = seededRandom(seed);
    const kills: string[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const delay = Math.floor(firstRepairMs + random() * (windowEndMs - firstRepairMs));
      const run = await scrub(killed.config, CHECKS, delay);
      const repaired = records(run.stderr).filter((record) => record['message'] === 'repaired').length;
      kills.push(`${delay} ms (${run.signal ?? `exit ${run.code}`}, ${repaired} repairs)`);
    }
    // Printed so that a failure can be replayed with SCRUB_KILL_SEED.
    process.stderr.write(
      `kill/resume on ${kind}: seed ${seed}, uninterrupted run ${reference.ms} ms (first repair at ${firstRepairMs} ms) with ${planned.length} repairs; killed after ${kills.join(', ')}\n`,
    );
    const resumed = await scrub(killed.config, CHECKS);
    expect(resumed.code, resumed.stderr).toBe(0);

    const expected = await durableTree(whole.store, since);
    expect(await durableTree(killed.store, since), `seed ${seed}`).toEqual(expected);
    // The stale temp files seeded are gone in both (young ones a kill left are a later run's).
    for (const store of [whole.store, killed.store]) {
      const keys = [...(await store.tree()).keys()];
      expect(keys.filter((key) => key.endsWith('.tmp-deadbeef-1'))).toEqual([]);
    }

    const again = await scrub(killed.config, CHECKS);
    expect(again.code, again.stderr).toBe(0);
    expect(records(again.stderr).filter((record) => record['message'] === 'repaired')).toEqual([]);
    expect(records(again.stderr).find((record) => record['message'] === 'scrub finished')).toMatchObject({
      repairs: 0,
      quarantined: 0,
      failures: 0,
    });
  }, 600_000);
});

describe.each(KINDS)('angos scrub on a healthy store on %s', (kind) => {
  let store: Store;
  let copy: StoreCopy | undefined;
  let dir: string;
  beforeAll(async () => {
    store = await openStore(kind);
    dir = await mkdtemp(join(tmpdir(), 'angos-scrub-healthy-'));
  });
  afterAll(async () => {
    await copy?.remove();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('leaves it byte-identical through every check at once (--blobs, a keep-all --retention, --reconcile-blob-index, --orphan-grants, --orphan-namespaces, --cache-orphans)', async () => {
    await seedHealthy(store.registry);
    // A session in progress and, on fs, a young temp file are healthy too.
    await store.registry.uploads.start('lib');
    if (store.fsRoots.metadata) await writeFile(join(store.fsRoots.metadata, 'lib/.tmp-cafe-1'), 'in flight');
    copy = await store.copy();
    const config = join(dir, 'config.toml');
    await writeFile(
      config,
      [
        SERVER,
        copy.storeConfig,
        '[gc]',
        'grace_period_secs = 86400',
        '[global.retention_policy]',
        'rules = ["true"]',
      ].join('\n'),
    );
    const before = await copy.tree();
    expect(before.size).toBeGreaterThan(20);
    for (const dryRun of [true, false]) {
      const run = await scrub(config, [...(dryRun ? ['-d'] : []), ...CHECKS, ...HEALTHY_EXTRA]);
      expect(run.code, run.stderr).toBe(0);
      const summary = records(run.stderr).find((record) => record['message'] === 'scrub finished');
      expect(summary, run.stderr).toMatchObject({ repairs: 0, quarantined: 0, failures: 0 });
      expect(Number(summary?.['keys_walked'])).toBeGreaterThan(20);
      expect(await copy.tree()).toEqual(before);
    }
  }, 300_000);
});
