import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { mkOci, runOk } from '@angos/test-support';
import {
  dataFile,
  inParallel,
  listAllTags,
  OCI_MANIFEST,
  pullBlob,
  pushChunked,
  pushImage,
  pushMonolithic,
  pushSmallBlob,
  putManifest,
  send,
} from './client.js';
import type { FloodMessage, FloodSettings } from './flood-worker.js';
import { BENCH_USER, type Subject } from './subjects.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** One measured figure per round; the report takes the median. */
export interface Scenario {
  readonly name: string;
  readonly unit: string;
  /** Whether a bigger figure is better (throughput) or worse (time, memory). */
  readonly higherIsBetter: boolean;
  run(subject: Subject, round: number): Promise<number>;
}

export interface ScenarioOptions {
  /** Size of the big blob (1 GiB by default). */
  readonly blobBytes: number;
  /** Size of the skopeo image layer (256 MiB by default). */
  readonly imageMiB: number;
  /** Seconds of each wrk run (10 by default). */
  readonly loadSeconds: number;
  readonly tagCount: number;
  /** Size of the blob pulled with and without a flood of wrong passwords (256 MiB by default). */
  readonly floodBlobMiB: number;
  readonly workDir: string;
}

export async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/**
 * Requests per second of ApacheBench (`ab -k -i`) with 50 keep-alive connections sending HEAD:
 * wrk cannot measure HEAD (it waits for the body that Content-Length announces). 50 stays under
 * the default `max_concurrent_requests` (64); beyond it the subject would answer 503.
 */
async function abHeadRate(url: string, seconds: number, redirects = false): Promise<number> {
  // -n is only a ceiling: -t ends the run.
  const args = ['-q', '-k', '-i', '-c50', `-t${seconds}`, '-n10000000', url];
  const { stdout } = await run('ab', args, { timeout: (seconds + 30) * 1000 });
  const failed = /Failed requests:\s+(\d+)/.exec(stdout);
  // ab counts a redirect as non-2xx; `redirects`: the subject answered this HEAD with one before.
  const non2xx = /Non-2xx responses:\s+(\d+)/.exec(stdout);
  if ((failed && failed[1] !== '0') || (non2xx && !redirects))
    throw new Error(`ab ${url}: failed or non-2xx responses\n${stdout}`);
  const rate = /Requests per second:\s+([\d.]+)/.exec(stdout);
  if (!rate) throw new Error(`ab ${url}: no rate in output`);
  return Number(rate[1]);
}

/**
 * Writes dirty pages back before a timed transfer: otherwise the previous round's gigabyte is
 * flushed during this one, and whichever subject ran after the bigger write looks slower.
 */
export async function settleDisk(): Promise<void> {
  await run('sync', []);
}

/** Requests per second of wrk with 50 connections (under `max_concurrent_requests`, 64) against one URL. */
async function wrkRate(url: string, seconds: number, headers: Record<string, string> = {}): Promise<number> {
  const args = ['-t2', '-c50', `-d${seconds}s`];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  const { stdout } = await run('wrk', [...args, url], { timeout: (seconds + 30) * 1000 });
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  if (errors) throw new Error(`wrk ${url}: ${errors[1]} error responses`);
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!rate) throw new Error(`wrk ${url}: no rate in output`);
  return Number(rate[1]);
}

function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

const FLOOD_REQUESTS = 2000;
const FLOOD_CONNECTIONS = 50;

/**
 * Runs the flood of flood-worker.ts on a worker thread: with its own event loop, sending it does
 * not slow the measured pull's client down, so what is measured is the registry.
 */
function passwordFlood(
  settings: FloodSettings,
  onProgress: (answered: number) => void,
): Promise<Map<number, number>> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./flood-worker.js', import.meta.url), { workerData: settings });
    worker.on('message', (message: FloodMessage) => {
      if (message.kind === 'progress') onProgress(message.answered);
      else resolve(new Map(message.statuses));
    });
    worker.on('error', reject);
    worker.on('exit', (code) => {
      if (code !== 0) reject(new Error(`the flood worker exited with ${code}`));
    });
  });
}

export function scenarios(options: ScenarioOptions): Scenario[] {
  const bigFile = () => dataFile(join(options.workDir, `blob-${options.blobBytes}`), options.blobBytes);
  const mib = options.blobBytes / MiB;
  // The small image served to the GET/HEAD load, pushed once per subject.
  const hot = new WeakMap<Subject, { layer: string }>();
  async function hotImage(subject: Subject) {
    let image = hot.get(subject);
    if (!image) {
      const manifest = await pushImage(subject.url, 'bench/hot', 'latest', 4096);
      image = { layer: (JSON.parse(manifest) as { layers: Array<{ digest: string }> }).layers[0]!.digest };
      hot.set(subject, image);
    }
    return image;
  }

  // The blob the flood scenarios pull, pushed once per subject.
  const floodBlob = new WeakMap<Subject, string>();
  async function floodBlobOf(subject: Subject): Promise<string> {
    let digest = floodBlob.get(subject);
    if (digest === undefined) {
      const file = await dataFile(
        join(options.workDir, `flood-blob-${options.floodBlobMiB}`),
        options.floodBlobMiB * MiB,
      );
      await pushMonolithic(subject.url, 'bench/flood', file);
      digest = file.digest;
      floodBlob.set(subject, digest);
    }
    return digest;
  }
  /** The pull of an authenticated client (the right password, sent as docker sends it). */
  async function authenticatedPull(subject: Subject, digest: string): Promise<number> {
    await settleDisk();
    let bytes = 0;
    const seconds = await timed(async () => {
      bytes = await pullBlob(subject.url, 'bench/flood', digest, {
        Authorization: basicAuth(BENCH_USER.username, BENCH_USER.password),
      });
    });
    if (bytes !== options.floodBlobMiB * MiB) throw new Error(`pull: ${bytes} bytes`);
    return seconds;
  }

  return [
    {
      name: `auth flood: pull ${options.floodBlobMiB} MiB as a logged-in user, no flood`,
      unit: 's',
      higherIsBetter: false,
      async run(subject) {
        return authenticatedPull(subject, await floodBlobOf(subject));
      },
    },
    {
      name: `auth flood: the same pull during ${FLOOD_REQUESTS} wrong-password requests from ${FLOOD_CONNECTIONS} connections`,
      unit: 's',
      higherIsBetter: false,
      async run(subject, round) {
        const digest = await floodBlobOf(subject);
        // The pull starts once the flood is under way (a tenth of it answered): password checks
        // are then queued, running, or being refused.
        let underWay: () => void = () => undefined;
        const started = new Promise<void>((resolve) => {
          underWay = resolve;
        });
        const flood = passwordFlood(
          { url: subject.url, round, requests: FLOOD_REQUESTS, connections: FLOOD_CONNECTIONS },
          (answered) => {
            if (answered >= FLOOD_REQUESTS / 10) underWay();
          },
        );
        await Promise.race([started, flood]);
        const floodStart = process.hrtime.bigint();
        const seconds = await authenticatedPull(subject, digest);
        const statuses = await flood;
        const floodSeconds = Number(process.hrtime.bigint() - floodStart) / 1e9;
        const summary = [...statuses].map(([status, count]) => `${count}×${status}`).join(', ');
        process.stderr.write(
          `    flood answers: ${summary}; it went on ${floodSeconds.toFixed(1)} s after the pull began\n`,
        );
        return seconds;
      },
    },
    {
      name: `monolithic push ${mib} MiB`,
      unit: 'MiB/s',
      higherIsBetter: true,
      async run(subject, round) {
        const file = await bigFile();
        await settleDisk();
        return mib / (await timed(() => pushMonolithic(subject.url, `bench/mono${round}`, file)));
      },
    },
    {
      name: `pull ${mib} MiB`,
      unit: 'MiB/s',
      higherIsBetter: true,
      async run(subject) {
        const file = await bigFile();
        await settleDisk();
        let bytes = 0;
        const seconds = await timed(async () => {
          bytes = await pullBlob(subject.url, 'bench/mono0', file.digest);
        });
        if (bytes !== file.size) throw new Error(`pull: ${bytes} bytes, expected ${file.size}`);
        return mib / seconds;
      },
    },
    {
      name: `chunked push ${mib} MiB (5 MiB PATCHes)`,
      unit: 'MiB/s',
      higherIsBetter: true,
      async run(subject, round) {
        const file = await bigFile();
        await settleDisk();
        return mib / (await timed(() => pushChunked(subject.url, `bench/chunked${round}`, file, 5 * MiB)));
      },
    },
    {
      name: `skopeo push ${options.imageMiB} MiB image`,
      unit: 's',
      higherIsBetter: false,
      async run(subject, round) {
        const layout = join(options.workDir, `layout-${subject.name}-${round}`);
        // New content every time: skopeo remembers blobs it has pushed and would skip them.
        await mkOci(layout, 'v1', undefined, {
          seed: `${subject.name}-${round}-${Date.now()}`,
          fillMb: options.imageMiB,
          compress: 'none',
        });
        try {
          return await timed(() =>
            runOk(
              'skopeo',
              [
                'copy',
                '--dest-tls-verify=false',
                `oci:${layout}:v1`,
                `docker://${subject.host}/bench/skopeo:r${round}`,
              ],
              {
                timeoutMs: 600_000,
              },
            ),
          );
        } finally {
          await rm(layout, { recursive: true, force: true });
        }
      },
    },
    {
      name: `skopeo pull ${options.imageMiB} MiB image`,
      unit: 's',
      higherIsBetter: false,
      async run(subject, round) {
        const target = await mkdtemp(join(options.workDir, 'pull-'));
        try {
          return await timed(() =>
            runOk(
              'skopeo',
              [
                'copy',
                '--src-tls-verify=false',
                `docker://${subject.host}/bench/skopeo:r${round}`,
                `oci:${join(target, 'out')}:v1`,
              ],
              {
                timeoutMs: 600_000,
              },
            ),
          );
        } finally {
          await rm(target, { recursive: true, force: true });
        }
      },
    },
    {
      name: 'manifest GET by tag, 50 connections',
      unit: 'req/s',
      higherIsBetter: true,
      async run(subject, round) {
        await hotImage(subject);
        const url = `${subject.url}/v2/bench/hot/manifests/latest`;
        if (round === 0) await noteRedirect(subject, url, 'GET', 'manifest GET', { Accept: OCI_MANIFEST });
        return wrkRate(url, options.loadSeconds, { Accept: OCI_MANIFEST });
      },
    },
    {
      name: 'blob HEAD, 50 connections',
      unit: 'req/s',
      higherIsBetter: true,
      async run(subject) {
        const { layer } = await hotImage(subject);
        const url = `${subject.url}/v2/bench/hot/blobs/${layer}`;
        const redirects = await noteRedirect(subject, url, 'HEAD', 'blob HEAD');
        return abHeadRate(url, options.loadSeconds, redirects);
      },
    },
    {
      name: `tag list of ${options.tagCount} tags, n=1000 pages`,
      unit: 'ms',
      higherIsBetter: false,
      async run(subject, round) {
        const namespace = 'bench/tags';
        if (round === 0) {
          const manifest = await pushImage(subject.url, namespace, 'base', 1024);
          const tags = Array.from({ length: options.tagCount }, (_, i) => `t${String(i).padStart(5, '0')}`);
          await inParallel(tags, 16, (tag) => putManifest(subject.url, namespace, tag, manifest));
        }
        let seen = 0;
        const seconds = await timed(async () => {
          seen = await listAllTags(subject.url, namespace, 1000);
        });
        if (seen !== options.tagCount + 1)
          throw new Error(`tag list: ${seen} tags, expected ${options.tagCount + 1}`);
        return seconds * 1000;
      },
    },
    {
      name: '20 concurrent pushes of distinct images (1 MiB layer)',
      unit: 's',
      higherIsBetter: false,
      async run(subject, round) {
        const images = Array.from({ length: 20 }, (_, i) => i);
        return timed(() =>
          inParallel(images, 20, (i) =>
            pushImage(subject.url, `bench/many${i}`, `r${round}`, MiB).then(() => undefined),
          ),
        );
      },
    },
  ];
}

/**
 * Whether the subject answers `method url` with a redirect (on S3: to a presigned RGW URL), said
 * on stderr: the load tools do not follow it, so that row then counts the redirects, not what the
 * client does next at RGW. Anything else but 200 is an error.
 */
async function noteRedirect(
  subject: Subject,
  url: string,
  method: string,
  label: string,
  headers: Record<string, string> = {},
): Promise<boolean> {
  const reply = await send(url, method, { headers });
  if (reply.status >= 300 && reply.status < 400) {
    process.stderr.write(`    ${subject.name} answers ${label} with ${reply.status} (not followed)\n`);
    return true;
  }
  if (reply.status !== 200) throw new Error(`${label} ${url}: ${reply.status}`);
  return false;
}

/** Sanity check that a subject answers like a registry before anything is timed. */
export async function warmUp(subject: Subject): Promise<void> {
  await pushSmallBlob(subject.url, 'bench/warmup', Buffer.from('warm up'));
}

export async function scratchDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'bench-work-'));
}
