/**
 * The pull-through cache scenario: an upstream CNCF distribution seeded with two images, and in
 * front of it, one after the other, `angos server` as a cache, the split deployment (gateway,
 * registry-api, pull-through-cache) and distribution in `proxy` mode. Each round starts the cache
 * empty, then:
 * - cold pull: one client pulls image A as docker does (manifest by tag, then config and layers,
 *   3 blobs at a time), timing the whole pull and the first byte of its big layer;
 * - warm pull: the same pull again;
 * - concurrent cold pull: N clients pull image B (still cold) at once.
 * The upstream's access log says how many GETs each blob cost and how many bytes it sent.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_ACCEPT } from '@angos/test-support';
import {
  dataFile,
  inParallel,
  OCI_MANIFEST,
  pullBlob,
  pushMonolithic,
  pushSmallBlob,
  putManifest,
  send,
} from './client.js';
import { sampleRss } from './rss.js';
import { settleDisk, timed } from './scenarios.js';
import { median } from './stats.js';
import { type Subject, type SubjectName, startAngos, startDistribution } from './subjects.js';

export const PULL_THROUGH_SCENARIO = 'pull-through cache';

/** The subjects this scenario has a cache form of. */
export const PULL_THROUGH_SUBJECTS: readonly SubjectName[] = ['angos', 'angos-split', 'distribution'];

const MiB = 1024 * 1024;
/** docker's `max-concurrent-downloads` default. */
const DOCKER_DOWNLOADS = 3;
/** The cache repository of the angos subjects: `mirror/bench/x` is `bench/x` upstream. */
const MIRROR = 'mirror';
const TAG = 'v1';
/** Longest a pull (or N of them) may take before the round fails rather than hangs. */
const PULL_DEADLINE_MS = 180_000;

export interface PullThroughOptions {
  /** Size of each image's big layer (256 MiB by default). */
  readonly layerMiB: number;
  /** Size of each of the 3 small layers. */
  readonly smallLayerMiB: number;
  /** Clients of the concurrent cold pull (10 by default). */
  readonly clients: number;
  readonly rounds: number;
  /** Where the layer files are made once and kept across runs. */
  readonly dataDir: string;
  /** Scratch space of this run (the upstream's access log). */
  readonly workDir: string;
  readonly log: (line: string) => void;
}

/** What one round measured on one subject. */
export interface PullThroughRound {
  readonly coldSeconds: number;
  /** From the request of the big layer to its first byte, during the cold pull. */
  readonly firstByteMs: number;
  /** Upstream GETs of the blob fetched most often, cold pull. */
  readonly coldGetsPerBlob: number;
  readonly coldUpstreamMiB: number;
  readonly warmSeconds: number;
  /** Requests of any kind the upstream saw during the warm pull. */
  readonly warmUpstreamRequests: number;
  readonly concurrentSeconds: number;
  readonly concurrentGetsPerBlob: number;
  readonly concurrentUpstreamMiB: number;
  /** Peak RSS of the cache's processes over the round. */
  readonly peakRssMiB: number;
}

export interface PullThroughFigures {
  readonly subject: SubjectName;
  readonly rounds: PullThroughRound[];
}

interface Blob {
  readonly digest: string;
  readonly size: number;
}

interface Image {
  /** Its name upstream. */
  readonly name: string;
  readonly blobs: readonly Blob[];
  /** The big layer. */
  readonly big: Blob;
}

/** A cache in front of the upstream, and the name under which it serves an upstream image. */
interface Cache {
  readonly subject: Subject;
  nameOf(upstreamName: string): string;
}

async function withDeadline<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: not done after ${PULL_DEADLINE_MS / 1000} s`)),
      PULL_DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Pushes an image of a big layer and 3 small ones (files made once under `dataDir`) to the upstream. */
async function seedImage(upstream: string, name: string, options: PullThroughOptions): Promise<Image> {
  const sizes = [options.layerMiB, options.smallLayerMiB, options.smallLayerMiB, options.smallLayerMiB];
  const label = name.replace(/\W/g, '-');
  const layers: Blob[] = [];
  for (const [i, mib] of sizes.entries()) {
    const file = await dataFile(join(options.dataDir, `cache-${label}-${i}-${mib}`), mib * MiB);
    await pushMonolithic(upstream, name, file);
    layers.push({ digest: file.digest, size: file.size });
  }
  const configBody = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' } }),
  );
  const config = { digest: await pushSmallBlob(upstream, name, configBody), size: configBody.length };
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer })),
  });
  await putManifest(upstream, name, TAG, manifest);
  return { name, blobs: [config, ...layers], big: layers[0]! };
}

/**
 * Pulls an image as docker does: the manifest by tag, then its config and layers, 3 at a time.
 * Returns the time from the request of the big layer to its first byte, in ms.
 */
async function dockerPull(cache: Cache, image: Image): Promise<number> {
  const name = cache.nameOf(image.name);
  const manifest = await send(`${cache.subject.url}/v2/${name}/manifests/${TAG}`, 'GET', {
    headers: { Accept: MANIFEST_ACCEPT },
  });
  if (manifest.status !== 200)
    throw new Error(`manifest of ${name}: HTTP ${manifest.status} ${manifest.body.toString().slice(0, 200)}`);
  let firstByteMs = Number.NaN;
  await inParallel(image.blobs, DOCKER_DOWNLOADS, async (blob) => {
    const start = process.hrtime.bigint();
    const onFirstByte =
      blob === image.big
        ? () => {
            firstByteMs = Number(process.hrtime.bigint() - start) / 1e6;
          }
        : undefined;
    const bytes = await pullBlob(cache.subject.url, name, blob.digest, {}, onFirstByte);
    if (bytes !== blob.size) throw new Error(`${name}@${blob.digest}: ${bytes} bytes, expected ${blob.size}`);
  });
  return firstByteMs;
}

/** distribution's access log (combined log format), read from a byte offset on. */
class AccessLog {
  constructor(readonly path: string) {}

  /** The current end of the log: count from here. */
  async mark(): Promise<number> {
    return (await stat(this.path)).size;
  }

  async requestsSince(mark: number): Promise<Array<{ method: string; path: string; bytes: number }>> {
    const text = (await readFile(this.path)).subarray(mark).toString('utf8');
    const requests: Array<{ method: string; path: string; bytes: number }> = [];
    for (const match of text.matchAll(/"([A-Z]+) (\S+) HTTP\/[\d.]+" \d{3} (\d+|-)/g)) {
      requests.push({ method: match[1]!, path: match[2]!, bytes: match[3] === '-' ? 0 : Number(match[3]) });
    }
    return requests;
  }

  /**
   * Until nothing has been logged for a second: a line is written when a response ends, so a
   * fetch the cache still runs in the background (distribution stores a blob on its own GET,
   * after the client's) shows up before the next step starts.
   */
  async settle(): Promise<void> {
    const deadline = Date.now() + 60_000;
    let size = await this.mark();
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const now = await this.mark();
      if (now === size) return;
      size = now;
    }
  }

  /** The most upstream GETs any blob of `image` had since `mark`, and the MiB those GETs sent. */
  async blobGets(mark: number, image: Image): Promise<{ most: number; mib: number }> {
    const requests = await this.requestsSince(mark);
    let most = 0;
    let bytes = 0;
    for (const blob of image.blobs) {
      const path = `/v2/${image.name}/blobs/${blob.digest}`;
      const gets = requests.filter((r) => r.method === 'GET' && r.path === path);
      most = Math.max(most, gets.length);
      bytes += gets.reduce((sum, r) => sum + r.bytes, 0);
    }
    return { most, mib: bytes / MiB };
  }
}

async function startCache(name: SubjectName, upstreamUrl: string): Promise<Cache> {
  const toml = `[[repository."${MIRROR}".upstream]]\nurl = "${upstreamUrl}"`;
  switch (name) {
    case 'angos':
      return { subject: await startAngos('fs', { toml }), nameOf: (n) => `${MIRROR}/${n}` };
    case 'angos-split':
      return {
        subject: await startAngos('split', { toml, pullThroughCache: true }),
        nameOf: (n) => `${MIRROR}/${n}`,
      };
    case 'distribution':
      return { subject: await startDistribution({ proxyOf: upstreamUrl }), nameOf: (n) => n };
    default:
      throw new Error(`${name} has no pull-through cache form here`);
  }
}

async function measureRound(
  name: SubjectName,
  upstreamUrl: string,
  log: AccessLog,
  images: { single: Image; concurrent: Image },
  clients: number,
): Promise<PullThroughRound> {
  const cache = await startCache(name, upstreamUrl);
  const rss = sampleRss(cache.subject.pids);
  try {
    await settleDisk();
    let mark = await log.mark();
    let firstByteMs = 0;
    const coldSeconds = await timed(async () => {
      firstByteMs = await withDeadline(dockerPull(cache, images.single), 'cold pull');
    });
    await log.settle();
    const cold = await log.blobGets(mark, images.single);

    await settleDisk();
    mark = await log.mark();
    const warmSeconds = await timed(() => withDeadline(dockerPull(cache, images.single), 'warm pull'));
    // What a warm pull asks the upstream, it asks before it answers: no settling needed.
    const warmUpstreamRequests = (await log.requestsSince(mark)).length;

    await settleDisk();
    mark = await log.mark();
    const concurrentSeconds = await timed(() =>
      withDeadline(
        Promise.all(Array.from({ length: clients }, () => dockerPull(cache, images.concurrent))),
        `${clients} concurrent cold pulls`,
      ),
    );
    await log.settle();
    const concurrent = await log.blobGets(mark, images.concurrent);
    return {
      coldSeconds,
      firstByteMs,
      coldGetsPerBlob: cold.most,
      coldUpstreamMiB: cold.mib,
      warmSeconds,
      warmUpstreamRequests,
      concurrentSeconds,
      concurrentGetsPerBlob: concurrent.most,
      concurrentUpstreamMiB: concurrent.mib,
      peakRssMiB: (await rss.stop()) / MiB,
    };
  } finally {
    await rss.stop();
    await cache.subject.stop();
  }
}

export async function benchPullThrough(
  subjects: readonly SubjectName[],
  options: PullThroughOptions,
): Promise<PullThroughFigures[]> {
  const accessLog = new AccessLog(join(options.workDir, 'upstream-access.log'));
  const upstream = await startDistribution({ accessLogPath: accessLog.path });
  const figures: PullThroughFigures[] = [];
  try {
    options.log(`  seeding the upstream with two ${options.layerMiB} MiB images`);
    const images = {
      single: await seedImage(upstream.url, 'bench/cache-single', options),
      concurrent: await seedImage(upstream.url, 'bench/cache-concurrent', options),
    };
    for (const name of subjects) {
      const rounds: PullThroughRound[] = [];
      figures.push({ subject: name, rounds });
      for (let round = 0; round < options.rounds; round++) {
        const r = await measureRound(name, upstream.url, accessLog, images, options.clients);
        rounds.push(r);
        options.log(
          `  ${name} #${round + 1}: cold ${r.coldSeconds.toFixed(2)} s (first byte ${r.firstByteMs.toFixed(0)} ms, ` +
            `${r.coldGetsPerBlob} GETs/blob, ${r.coldUpstreamMiB.toFixed(0)} MiB upstream), ` +
            `warm ${r.warmSeconds.toFixed(2)} s (${r.warmUpstreamRequests} upstream requests), ` +
            `${options.clients} cold clients ${r.concurrentSeconds.toFixed(2)} s ` +
            `(${r.concurrentGetsPerBlob} GETs/blob, ${r.concurrentUpstreamMiB.toFixed(0)} MiB upstream), ` +
            `RSS peak ${r.peakRssMiB.toFixed(0)} MiB`,
        );
      }
    }
  } finally {
    await upstream.stop();
  }
  return figures;
}

/** The pull-through figures as a Markdown table: medians, and counts as the range over rounds. */
export function pullThroughTable(
  figures: readonly PullThroughFigures[],
  options: { readonly clients: number; readonly layerMiB: number },
): string {
  const { clients, layerMiB } = options;
  const subjects = figures.map((f) => f.subject);
  const compare = subjects.includes('angos') && subjects.includes('distribution');
  const rows: Array<[string, string, (r: PullThroughRound) => number, 'median' | 'range']> = [
    ['cold pull', 's', (r) => r.coldSeconds, 'median'],
    [`first byte of the cold ${layerMiB} MiB layer`, 'ms', (r) => r.firstByteMs, 'median'],
    ['upstream GETs per blob, cold pull', 'GETs', (r) => r.coldGetsPerBlob, 'range'],
    ['upstream bytes sent, cold pull', 'MiB', (r) => r.coldUpstreamMiB, 'median'],
    ['warm pull', 's', (r) => r.warmSeconds, 'median'],
    ['upstream requests, warm pull', 'requests', (r) => r.warmUpstreamRequests, 'range'],
    [`${clients} concurrent cold clients, all done`, 's', (r) => r.concurrentSeconds, 'median'],
    [
      `upstream GETs per blob, ${clients} concurrent cold clients`,
      'GETs',
      (r) => r.concurrentGetsPerBlob,
      'range',
    ],
    [
      `upstream bytes sent, ${clients} concurrent cold clients`,
      'MiB',
      (r) => r.concurrentUpstreamMiB,
      'median',
    ],
    ['RSS peak of the cache', 'MiB', (r) => r.peakRssMiB, 'median'],
  ];
  const format = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(2));
  const header = ['measure', 'unit', ...subjects, ...(compare ? ['angos / distribution'] : [])];
  const lines = rows.map(([label, unit, pick, kind]) => {
    const cells = figures.map((f) => {
      const values = f.rounds.map(pick);
      if (kind === 'median') return format(median(values));
      const low = Math.min(...values);
      const high = Math.max(...values);
      return low === high ? String(low) : `${low}–${high}`;
    });
    if (compare) {
      if (kind === 'median') {
        const ours = median(figures[subjects.indexOf('angos')]!.rounds.map(pick));
        const theirs = median(figures[subjects.indexOf('distribution')]!.rounds.map(pick));
        cells.push(theirs === 0 ? '—' : `${(ours / theirs).toFixed(2)}×`);
      } else cells.push('—');
    }
    return [label, unit, ...cells];
  });
  return [header, header.map(() => '---'), ...lines].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}
