/**
 * The scale scenario (`--only scale`): a registry of 10,000 repositories and 100,000 tags (10
 * each; `--quick`: 1,000 and 10,000), written straight into each subject's store (angos:
 * namespace-seed.ts through the storage drivers, keys from libs/storage keys.ts; distribution:
 * distribution-seed.ts, its own layout), on fs and on the run's Ceph RGW. Then, one walk each:
 * `_catalog` with n=100 and with n=1000, every page by its Link header; and the tags of 50
 * repositories spread over the registry, n=5. The figures are the latency of each request (p50,
 * p99, max) and the subject's RSS before and after. A catalog walk stops at the end of the page
 * that passes `walkLimitSeconds` (a catalog that reads the whole store for each page would
 * otherwise take hours on S3); the table then says how far it got.
 * A benchmark, not a test: it asserts only that the listings name what was seeded.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openStores } from '@angos/storage';
import { type S3Endpoint, s3TestStores } from '@angos/test-support';
import { send } from './client.js';
import { fsPaths, s3Paths, seedDistribution } from './distribution-seed.js';
import { seedNamespaceName, seedNamespaces } from './namespace-seed.js';
import { sampleRss, totalRss } from './rss.js';
import { percentile } from './stats.js';
import { RATIO_PAIRS, type Subject, type SubjectName, startAngos, startDistribution } from './subjects.js';

export const SCALE_SCENARIO = 'scale';

/** The subjects measured at scale: each kind of registry on each kind of store. */
export const SCALE_SUBJECTS: readonly SubjectName[] = [
  'angos',
  'angos-s3',
  'distribution',
  'distribution-s3',
];

const MiB = 1024 * 1024;

export interface ScaleOptions {
  readonly repositories: number;
  readonly tagsPerRepository: number;
  /** How many repositories' tags are walked, spread evenly over the registry. */
  readonly tagRepositories: number;
  readonly tagPageSize: number;
  /** Catalog page sizes, one walk each. */
  readonly catalogPageSizes: readonly number[];
  readonly walkLimitSeconds: number;
  readonly workDir: string;
  readonly log: (line: string) => void;
}

export interface WalkFigures {
  readonly listing: string;
  readonly requests: number;
  /** Names listed, and how many were seeded to be listed. */
  readonly entries: number;
  readonly expected: number;
  /** Whether the walk reached the last page (false: stopped at the time limit). */
  readonly complete: boolean;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface ScaleFigures {
  readonly subject: SubjectName;
  readonly repositories: number;
  readonly tags: number;
  readonly seedSeconds: number;
  readonly walks: WalkFigures[];
  readonly rssIdleMiB: number;
  readonly rssPeakMiB: number;
  readonly rssAfterMiB: number;
}

/** A subject started on a store seeded for it; `cleanup` removes what the seed wrote on disk. */
interface Seeded {
  readonly subject: Subject;
  readonly seedSeconds: number;
  cleanup(): Promise<void>;
}

async function seedAndStart(
  name: SubjectName,
  options: ScaleOptions,
  s3: () => Promise<S3Endpoint>,
): Promise<Seeded> {
  const started = performance.now();
  const progress = (done: number) => {
    if (done % Math.max(500, options.repositories / 5) === 0) options.log(`  seeded ${done} repositories`);
  };
  const seedSeconds = () => (performance.now() - started) / 1000;
  const nothing = async () => undefined;
  const angosShape = {
    namespaces: options.repositories,
    tagsPerNamespace: options.tagsPerRepository,
    onProgress: progress,
  };
  const distributionShape = {
    repositories: options.repositories,
    tags: options.tagsPerRepository,
    onProgress: progress,
  };
  switch (name) {
    case 'angos': {
      const rootDir = await mkdtemp(join(options.workDir, 'scale-angos-'));
      const stores = await openStores({
        blob: { kind: 'fs', rootDir, syncToDisk: false },
        metadata: { kind: 'fs', rootDir, syncToDisk: false },
      });
      try {
        await seedNamespaces(stores, angosShape);
      } finally {
        await stores.close?.();
      }
      const seconds = seedSeconds();
      const cleanup = () => rm(rootDir, { recursive: true, force: true });
      return {
        subject: await startAngos('fs', { store: { rootDir } }).catch(failed(cleanup)),
        seedSeconds: seconds,
        cleanup,
      };
    }
    case 'angos-s3': {
      const endpoint = await s3();
      const keyPrefix = `scale-${Date.now()}`;
      const stores = await openStores(s3TestStores(endpoint, keyPrefix));
      try {
        await seedNamespaces(stores, angosShape);
      } finally {
        await stores.close?.();
      }
      const seconds = seedSeconds();
      // The objects stay in the RGW of the run, which is removed when the run ends.
      return {
        subject: await startAngos(endpoint, { store: { keyPrefix } }),
        seedSeconds: seconds,
        cleanup: nothing,
      };
    }
    case 'distribution': {
      const rootDirectory = await mkdtemp(join(options.workDir, 'scale-distribution-'));
      await seedDistribution(fsPaths(rootDirectory), distributionShape);
      const seconds = seedSeconds();
      const cleanup = () => rm(rootDirectory, { recursive: true, force: true });
      const subject = await startDistribution({ rootDirectory }).catch(failed(cleanup));
      return { subject, seedSeconds: seconds, cleanup };
    }
    case 'distribution-s3': {
      const endpoint = await s3();
      const rootDirectory = `distribution-scale-${Date.now()}`;
      const paths = s3Paths(endpoint, rootDirectory);
      try {
        await seedDistribution(paths.put, distributionShape);
      } finally {
        paths.close();
      }
      const seconds = seedSeconds();
      const subject = await startDistribution({ s3: endpoint, rootDirectory });
      return { subject, seedSeconds: seconds, cleanup: nothing };
    }
    default:
      throw new Error(`${name}: no scale form`);
  }
}

function failed(cleanup: () => Promise<void>) {
  return async (error: unknown): Promise<never> => {
    await cleanup();
    throw error;
  };
}

/** The next page's path from a Link header (`<…>; rel="next"`), relative or absolute. */
function nextPage(link: string | string[] | undefined): string | undefined {
  const target = typeof link === 'string' ? /<([^>]+)>/.exec(link)?.[1] : undefined;
  if (target === undefined) return undefined;
  if (!target.startsWith('http')) return target;
  const url = new URL(target);
  return `${url.pathname}${url.search}`;
}

/**
 * Follows the pages from `first` until no Link (or the deadline); `field` is the array of names in
 * each page. Returns each request's milliseconds and the names listed.
 */
async function walkPages(
  base: string,
  first: string,
  field: 'repositories' | 'tags',
  deadline = Number.POSITIVE_INFINITY,
): Promise<{ latencies: number[]; names: string[]; complete: boolean }> {
  const latencies: number[] = [];
  const names: string[] = [];
  let next: string | undefined = first;
  while (next !== undefined) {
    if (performance.now() > deadline) return { latencies, names, complete: false };
    const start = performance.now();
    const reply = await send(`${base}${next}`, 'GET');
    latencies.push(performance.now() - start);
    if (reply.status !== 200)
      throw new Error(`GET ${next}: ${reply.status} ${reply.body.toString().slice(0, 200)}`);
    names.push(...((JSON.parse(reply.body.toString()) as Record<string, string[] | null>)[field] ?? []));
    next = nextPage(reply.headers.link);
  }
  return { latencies, names, complete: true };
}

function walkFigures(
  listing: string,
  walk: { latencies: number[]; names: string[]; complete: boolean },
  expected: number,
): WalkFigures {
  if (walk.complete && walk.names.length !== expected)
    throw new Error(`${listing}: ${walk.names.length} names listed, ${expected} seeded`);
  if (new Set(walk.names).size !== walk.names.length) throw new Error(`${listing}: a name listed twice`);
  return {
    listing,
    requests: walk.latencies.length,
    entries: walk.names.length,
    expected,
    complete: walk.complete,
    seconds: walk.latencies.reduce((sum, ms) => sum + ms, 0) / 1000,
    p50Ms: percentile(walk.latencies, 50),
    p99Ms: percentile(walk.latencies, 99),
    maxMs: Math.max(...walk.latencies),
  };
}

async function measure(subject: Subject, options: ScaleOptions): Promise<WalkFigures[]> {
  const walks: WalkFigures[] = [];
  for (const n of options.catalogPageSizes) {
    const deadline = performance.now() + options.walkLimitSeconds * 1000;
    const walk = await walkPages(subject.url, `/v2/_catalog?n=${n}`, 'repositories', deadline);
    walks.push(walkFigures(`_catalog n=${n}`, walk, options.repositories));
    options.log(
      `  _catalog n=${n}: ${walk.latencies.length} pages${walk.complete ? '' : ` (stopped after ${options.walkLimitSeconds} s)`}, p50 ${walks.at(-1)!.p50Ms.toFixed(0)} ms, p99 ${walks.at(-1)!.p99Ms.toFixed(0)} ms`,
    );
  }
  const step = Math.max(1, Math.floor(options.repositories / options.tagRepositories));
  const picked = Array.from({ length: Math.min(options.tagRepositories, options.repositories) }, (_, i) =>
    seedNamespaceName(i * step),
  );
  const latencies: number[] = [];
  const names: string[] = [];
  for (const repository of picked) {
    const walk = await walkPages(subject.url, `/v2/${repository}/tags/list?n=${options.tagPageSize}`, 'tags');
    latencies.push(...walk.latencies);
    names.push(...walk.names.map((tag) => `${repository}:${tag}`));
  }
  const listing = `tags/list n=${options.tagPageSize}, ${picked.length} repositories`;
  walks.push(
    walkFigures(listing, { latencies, names, complete: true }, picked.length * options.tagsPerRepository),
  );
  options.log(
    `  ${listing}: ${latencies.length} requests, p50 ${walks.at(-1)!.p50Ms.toFixed(0)} ms, p99 ${walks.at(-1)!.p99Ms.toFixed(0)} ms`,
  );
  return walks;
}

export async function benchScale(
  subjects: readonly SubjectName[],
  options: ScaleOptions,
  s3: () => Promise<S3Endpoint>,
): Promise<ScaleFigures[]> {
  const results: ScaleFigures[] = [];
  for (const name of subjects) {
    options.log(
      `  ${name}: seeding ${options.repositories} repositories × ${options.tagsPerRepository} tags`,
    );
    const seeded = await seedAndStart(name, options, s3);
    try {
      options.log(`  ${name}: seeded in ${seeded.seedSeconds.toFixed(1)} s`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const idle = await totalRss(seeded.subject.pids);
      const peak = sampleRss(seeded.subject.pids);
      const walks = await measure(seeded.subject, options);
      const peakBytes = await peak.stop();
      await new Promise((resolve) => setTimeout(resolve, 2000));
      results.push({
        subject: name,
        repositories: options.repositories,
        tags: options.repositories * options.tagsPerRepository,
        seedSeconds: seeded.seedSeconds,
        walks,
        rssIdleMiB: idle / MiB,
        rssPeakMiB: Math.max(idle, peakBytes) / MiB,
        rssAfterMiB: (await totalRss(seeded.subject.pids)) / MiB,
      });
    } finally {
      await seeded.subject.stop();
      await seeded.cleanup();
    }
  }
  return results;
}

/** One column per subject, a row per measure, and angos / distribution on each kind of store. */
export function scaleTable(figures: readonly ScaleFigures[]): string {
  const subjects = figures.map((figure) => figure.subject);
  const pairs = RATIO_PAIRS.filter(([ours, theirs]) => subjects.includes(ours) && subjects.includes(theirs));
  const header = ['measure', 'unit', ...subjects, ...pairs.map(([ours, theirs]) => `${ours} / ${theirs}`)];
  const rows: string[][] = [];
  const row = (
    label: string,
    unit: string,
    pick: (figure: ScaleFigures) => number | undefined,
    cell: (value: number | undefined, figure: ScaleFigures) => string = fixed,
  ) => {
    const values = figures.map(pick);
    const ratios = pairs.map(([ours, theirs]) => {
      const a = values[subjects.indexOf(ours)];
      const b = values[subjects.indexOf(theirs)];
      return a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}×` : '—';
    });
    rows.push([label, unit, ...figures.map((figure, i) => cell(values[i], figure)), ...ratios]);
  };
  for (const listing of figures[0]?.walks.map((walk) => walk.listing) ?? []) {
    const walkOf = (figure: ScaleFigures) => figure.walks.find((walk) => walk.listing === listing);
    row(
      `${listing}: requests`,
      'count',
      (figure) => walkOf(figure)?.requests,
      (value, figure) => {
        const walk = walkOf(figure);
        if (walk === undefined || value === undefined) return '—';
        return walk.complete
          ? String(value)
          : `${value} (stopped: ${walk.entries} of ${walk.expected} listed)`;
      },
    );
    row(`${listing}: p50`, 'ms', (figure) => walkOf(figure)?.p50Ms);
    row(`${listing}: p99`, 'ms', (figure) => walkOf(figure)?.p99Ms);
    row(`${listing}: max`, 'ms', (figure) => walkOf(figure)?.maxMs);
  }
  row('seeding the store (not timed as the subject)', 's', (figure) => figure.seedSeconds);
  row('RSS at idle, seeded', 'MiB', (figure) => figure.rssIdleMiB);
  row('RSS peak', 'MiB', (figure) => figure.rssPeakMiB);
  row('RSS after the walks', 'MiB', (figure) => figure.rssAfterMiB);
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function fixed(value: number | undefined): string {
  if (value === undefined) return '—';
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}
