/**
 * A replication worker SIGKILLed in the middle of a push. A is `angos server` with
 * `[global.job_queue]` (fs storage, Redis locks), so its replication jobs are run by a separate
 * `angos worker` process; B, a plain `angos server`, is its downstream, reached through a proxy
 * that lets the first blob uploads through and then holds every further one unanswered. Once the
 * worker is stuck there (some blobs on B, no manifest), it is SIGKILLed; a new worker takes the
 * job over after the lock's TTL and completes it. Throughout, a poller on B checks every manifest
 * it can see for content it cannot serve.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AngosInstance,
  cliEntry,
  exited,
  freePort,
  OciClient,
  OutputTail,
  type RedisServer,
  skipWithout,
  startAngos,
  startProxy,
  startRedisServer,
  type TestProxy,
  terminate,
  track,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, missingContent, peerConfig, pushIndex, until } from './replication-fixtures.js';

const REPO = 'nginx/app';
/** Blob uploads the proxy lets through before it holds the rest (the image has 8 blobs). */
const UPLOADS_BEFORE_HOLD = 3;

interface PollReport {
  /** How many times the poller found one of the manifests there. */
  readonly seen: number;
  /** `reference: missing digests` for each time it found one whose content was not all there. */
  readonly gaps: string[];
}

/**
 * Polls `references` on `client` back to back until stopped; for each manifest found, checks
 * every blob and child manifest it references (missingContent).
 */
function pollManifests(client: OciClient, references: () => readonly string[]) {
  let running = true;
  let seen = 0;
  const gaps: string[] = [];
  const loop = (async () => {
    while (running) {
      for (const reference of references()) {
        const missing = await missingContent(client, REPO, reference).catch(() => null);
        if (missing === null) continue;
        seen += 1;
        if (missing.length > 0) gaps.push(`${reference}: ${missing.join(', ')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  return {
    async stop(): Promise<PollReport> {
      running = false;
      await loop;
      return { seen, gaps };
    },
  };
}

describe.skipIf(skipWithout('the worker-kill replication test', 'redis-server'))(
  'replication: a worker SIGKILLed mid-push',
  () => {
    let redis: RedisServer;
    let work: string;
    let a: AngosInstance;
    let b: AngosInstance;
    let proxy: TestProxy;
    let worker: { child: ChildProcess; output: OutputTail } | undefined;

    async function startWorker(): Promise<void> {
      const port = await freePort();
      const child = spawn(
        process.execPath,
        [
          cliEntry(),
          ...['-c', a.configPath, 'worker', '--queue', 'replication'],
          ...['--listen', `127.0.0.1:${port}`, '--poll-interval', '200ms'],
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      track(child);
      const output = new OutputTail();
      child.stdout?.on('data', (chunk: Buffer) => output.write(chunk));
      child.stderr?.on('data', (chunk: Buffer) => output.write(chunk));
      worker = { child, output };
      await until('the worker ready', async () => {
        if (child.exitCode !== null) throw new Error(`angos worker exited:\n${output.toString()}`);
        const ready = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
        await ready?.arrayBuffer();
        return ready?.status === 200;
      });
    }

    beforeAll(async () => {
      redis = await startRedisServer();
      work = await mkdtemp(join(tmpdir(), 'angos-worker-kill-'));
      b = await startAngos({ mode: 'server' });
      proxy = await startProxy(b.url);
      const root = JSON.stringify(join(work, 'a'));
      a = await startAngos({
        mode: 'server',
        config: [
          `[blob_store.fs]\nroot_dir = ${root}`,
          `[metadata_store.fs]\nroot_dir = ${root}`,
          // A short TTL: the killed worker's claim is taken over soon after.
          `[metadata_store.fs.lock_strategy.redis]\nurl = "${redis.url}"\nttl = 3\nkey_prefix = "a"`,
          '[global.job_queue]',
          peerConfig([{ name: 'instance-b', url: proxy.url, mode: 'event-only' }]),
        ].join('\n'),
      });
      await startWorker();
    }, 90_000);

    afterAll(async () => {
      if (worker) await terminate(worker.child);
      await proxy?.close();
      await Promise.all([a?.stop(), b?.stop()]);
      await redis?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('the job completes after a restart, and no manifest ever shows on B before its content', async () => {
      const clientA = new OciClient(a.url);
      const clientB = new OciClient(b.url);
      const held: ServerResponse[] = [];
      let uploads = 0;
      let holding!: () => void;
      const stuck = new Promise<void>((resolve) => {
        holding = resolve;
      });
      proxy.intercept = (req, res) => {
        if (req.method !== 'PUT' || !/\/blobs\/uploads\//.test(req.url ?? '')) return false;
        uploads += 1;
        if (uploads <= UPLOADS_BEFORE_HOLD) return false;
        held.push(res);
        holding();
        return true;
      };
      // The tag, and each child manifest by digest once A says which they are.
      const references = ['v1'];
      const poller = pollManifests(clientB, () => references);

      const digest = await pushIndex(clientA, REPO, 'v1', { children: 2, layers: 3 });
      const index = JSON.parse((await clientA.getManifest(REPO, digest)).body.toString('utf8')) as {
        manifests: Array<{ digest: string }>;
      };
      references.push(...index.manifests.map((child) => child.digest));

      const first = worker as NonNullable<typeof worker>;
      await Promise.race([
        stuck,
        exited(first.child).then(() => {
          throw new Error(`the worker exited before the hold:\n${first.output.toString()}`);
        }),
      ]);
      // Mid-push: B holds some of the blobs, and no manifest.
      expect(await digestOf(clientB, REPO, 'v1')).toBeNull();
      first.child.kill('SIGKILL');
      await exited(first.child);
      expect(first.child.signalCode).toBe('SIGKILL');
      for (const res of held) res.destroy();
      proxy.intercept = () => false;
      expect(await digestOf(clientB, REPO, 'v1')).toBeNull();

      await startWorker();
      await until(
        'v1 on B after the restart',
        async () => (await digestOf(clientB, REPO, 'v1')) === digest,
        60_000,
      );
      const report = await poller.stop();
      expect(report.gaps).toEqual([]);
      expect(report.seen).toBeGreaterThan(0);
      expect(await missingContent(clientB, REPO, digest)).toEqual([]);
      // The job is done: nothing left pending or dead-lettered.
      const jobs = async (state: string) => {
        const listed = await fetch(`${a.url}/v2/_ext/jobs/${state}?queue=replication`);
        return ((await listed.json()) as { jobs: unknown[] }).jobs;
      };
      await until('no replication job left', async () => (await jobs('pending')).length === 0);
      expect(await jobs('failed')).toEqual([]);
    }, 120_000);
  },
);
