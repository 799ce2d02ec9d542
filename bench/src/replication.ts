/**
 * The replication scenario: a source `angos server` (fs) replicating namespace `bench/app` to a
 * downstream, Angos or CNCF distribution, each image a config and a 4 KiB layer of its own.
 * - Catch-up: the source holds N tags (1,000 by default) and a fresh downstream none; the time of
 *   one `angos scrub --replicate` (which queues a job per tag, then drains them, in the server the
 *   run is handed to) until the downstream holds them all. Every round starts both anew.
 * - Steady state: the source with `[global.job_queue]` and an `angos worker` running the jobs;
 *   a client pushes new tags at a fixed rate (10/s by default) for a while (60 s), and for each
 *   push the time from its 201 on the source to the tag showing in the downstream's tag list
 *   (read every 50 ms); and the largest `angos_replication_lag_seconds` the source published
 *   meanwhile.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { angosLauncher } from '@angos/test-support';
import { inParallel, listAllTags, pushImage, send } from './client.js';
import { median } from './stats.js';
import { type Subject, startAngos, startDistribution } from './subjects.js';

export const REPLICATION_SCENARIO = 'replication';

export type DownstreamKind = 'angos' | 'distribution';

const run = promisify(execFile);
const NAMESPACE = 'bench/app';
const LAYER_BYTES = 4096;
/** Pushes at once while filling the source for the catch-up. */
const FILL_CLIENTS = 8;
/** How often the downstream's tags are listed (and the warm-up tag looked for). */
const VISIBLE_POLL_MS = 50;
/** Longest one tag may take to show on the downstream before the run fails. */
const VISIBLE_DEADLINE_MS = 120_000;

export interface ReplicationOptions {
  /** Tags of the catch-up namespace. */
  readonly tags: number;
  /** Pushes per second of the steady state. */
  readonly rate: number;
  /** How long the steady state lasts. */
  readonly seconds: number;
  readonly rounds: number;
  readonly log: (line: string) => void;
}

export interface SteadyState {
  readonly pushes: number;
  /** Pushes per second the client achieved (the 201s, over the run). */
  readonly achievedRate: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Largest `angos_replication_lag_seconds{downstream}` scraped from the source (every second). */
  readonly gaugeMaxSeconds: number;
}

export interface ReplicationFigures {
  readonly downstream: DownstreamKind;
  /** Seconds of each round's `scrub --replicate`. */
  readonly catchUpSeconds: number[];
  readonly steady: SteadyState;
}

const startDownstream = (kind: DownstreamKind): Promise<Subject> =>
  kind === 'angos' ? startAngos('fs') : startDistribution();

/** The source's repository `bench`, replicating to `url` in `mode`. */
function downstreamToml(url: string, mode: string): string {
  return [
    '[repository."bench"]',
    '[repository."bench".access_policy]\ndefault = "allow"',
    '[[repository."bench".downstream]]',
    'name = "downstream"',
    `url = "${url}"`,
    `mode = "${mode}"`,
  ].join('\n');
}

const tagName = (prefix: string, i: number) => `${prefix}${String(i).padStart(5, '0')}`;
const digestOf = (manifest: string) => `sha256:${createHash('sha256').update(manifest).digest('hex')}`;

async function stopAll(subjects: readonly (Subject | undefined)[]): Promise<void> {
  await Promise.all(subjects.map((subject) => subject?.stop()));
}

/** One round of the catch-up: the seconds of `scrub --replicate` to a fresh downstream. */
async function catchUp(kind: DownstreamKind, options: ReplicationOptions): Promise<number> {
  let downstream: Subject | undefined;
  let source: Subject | undefined;
  try {
    downstream = await startDownstream(kind);
    // reconcile-only: the fill queues no live job, the downstream stays empty until the run.
    source = await startAngos('fs', { toml: downstreamToml(downstream.url, 'reconcile-only') });
    const tags = Array.from({ length: options.tags }, (_, i) => tagName('t', i));
    const base = source.url;
    await inParallel(tags, FILL_CLIENTS, async (tag) => {
      await pushImage(base, NAMESPACE, tag, LAYER_BYTES);
    });
    const angos = angosLauncher();
    const started = performance.now();
    await run(angos, ['-c', source.configPath as string, 'scrub', '--replicate'], {
      env: { ...process.env, RUST_LOG: 'warn' },
      maxBuffer: 64 * 1024 * 1024,
    });
    const seconds = (performance.now() - started) / 1000;
    const held = await listAllTags(downstream.url, NAMESPACE, 1000);
    if (held !== options.tags) throw new Error(`${kind}: ${held} of ${options.tags} tags after the run`);
    return seconds;
  } finally {
    await stopAll([source, downstream]);
  }
}

/** Resolves with the ms from now until `tag` names `digest` on `base`. */
async function visibleAfter(base: string, tag: string, digest: string): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < VISIBLE_DEADLINE_MS) {
    const reply = await send(`${base}/v2/${NAMESPACE}/manifests/${tag}`, 'HEAD', {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    if (reply.status === 200 && reply.headers['docker-content-digest'] === digest) {
      return performance.now() - started;
    }
    await new Promise((resolve) => setTimeout(resolve, VISIBLE_POLL_MS));
  }
  throw new Error(`${tag}: not on the downstream after ${VISIBLE_DEADLINE_MS / 1000} s`);
}

/** The value of `angos_replication_lag_seconds{downstream="downstream"}` on `base`, if published. */
async function lagGauge(base: string): Promise<number | undefined> {
  const reply = await send(`${base}/metrics`, 'GET');
  const match = /^angos_replication_lag_seconds\{downstream="downstream"\} (\S+)$/m.exec(
    reply.body.toString(),
  );
  return match ? Number(match[1]) : undefined;
}

const percentile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;

/** Every tag of the namespace on `base` (following the tag list's pages); empty before the first push. */
async function tagNames(base: string): Promise<string[]> {
  const names: string[] = [];
  let next: string | undefined = `/v2/${NAMESPACE}/tags/list`;
  while (next) {
    const reply = await send(`${base}${next}`, 'GET');
    if (reply.status === 404) return names;
    if (reply.status !== 200) throw new Error(`tag list: HTTP ${reply.status}`);
    names.push(...((JSON.parse(reply.body.toString()) as { tags: string[] | null }).tags ?? []));
    const link = reply.headers.link;
    next = typeof link === 'string' ? /<([^>]+)>/.exec(link)?.[1] : undefined;
  }
  return names;
}

/**
 * When each tag first shows on the downstream: one tag list every VISIBLE_POLL_MS, whatever the
 * backlog (a HEAD loop per waiting tag would load the downstream more the further it falls
 * behind, and slow the replication it measures).
 */
function watchTags(base: string) {
  const firstSeen = new Map<string, number>();
  let watching = true;
  const loop = (async () => {
    while (watching) {
      const names = await tagNames(base);
      const now = performance.now();
      for (const name of names) if (!firstSeen.has(name)) firstSeen.set(name, now);
      await new Promise((resolve) => setTimeout(resolve, VISIBLE_POLL_MS));
    }
  })();
  return {
    firstSeen,
    async stop(): Promise<void> {
      watching = false;
      await loop;
    },
  };
}

async function steadyState(kind: DownstreamKind, options: ReplicationOptions): Promise<SteadyState> {
  let downstream: Subject | undefined;
  let source: Subject | undefined;
  try {
    downstream = await startDownstream(kind);
    source = await startAngos('fs', {
      toml: downstreamToml(downstream.url, 'event-only'),
      replicationWorker: true,
    });
    const { url: from } = source;
    const { url: to } = downstream;
    // One push and its arrival first: the worker and both registries are warm.
    await visibleAfter(to, 'warm', digestOf(await pushImage(from, NAMESPACE, 'warm', LAYER_BYTES)));

    let sampling = true;
    let gaugeMax = 0;
    const sampler = (async () => {
      while (sampling) {
        gaugeMax = Math.max(gaugeMax, (await lagGauge(from).catch(() => undefined)) ?? 0);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    })();
    const watcher = watchTags(to);
    const count = Math.round(options.rate * options.seconds);
    const intervalMs = 1000 / options.rate;
    const started = performance.now();
    let lastAcknowledged = started;
    /** Tag → when the source answered 201. */
    const acknowledged = new Map<string, number>();
    const lags: number[] = [];
    try {
      const pushes: Promise<void>[] = [];
      for (let i = 0; i < count; i++) {
        // On schedule from the start: a slow push does not delay the next one.
        const due = started + i * intervalMs;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
        const tag = tagName('s', i);
        pushes.push(
          pushImage(from, NAMESPACE, tag, LAYER_BYTES).then(() => {
            lastAcknowledged = Math.max(lastAcknowledged, performance.now());
            acknowledged.set(tag, performance.now());
          }),
        );
      }
      await Promise.all(pushes);
      const deadline = performance.now() + VISIBLE_DEADLINE_MS;
      while ([...acknowledged.keys()].some((tag) => !watcher.firstSeen.has(tag))) {
        if (performance.now() > deadline) throw new Error(`${kind}: tags missing downstream after the run`);
        await new Promise((resolve) => setTimeout(resolve, VISIBLE_POLL_MS));
      }
      // A tag seen before its 201 reached the client counts as no lag.
      for (const [tag, at] of acknowledged) lags.push(Math.max(0, (watcher.firstSeen.get(tag) ?? at) - at));
      lags.sort((x, y) => x - y);
    } finally {
      await watcher.stop().catch(() => undefined);
      sampling = false;
      await sampler.catch(() => undefined);
    }
    const achievedRate = count / ((lastAcknowledged - started) / 1000);
    return {
      pushes: count,
      achievedRate,
      p50Ms: percentile(lags, 50),
      p99Ms: percentile(lags, 99),
      maxMs: lags.at(-1) ?? Number.NaN,
      gaugeMaxSeconds: gaugeMax,
    };
  } finally {
    await stopAll([source, downstream]);
  }
}

export async function benchReplication(
  downstreams: readonly DownstreamKind[],
  options: ReplicationOptions,
): Promise<ReplicationFigures[]> {
  const figures: ReplicationFigures[] = [];
  for (const kind of downstreams) {
    const catchUpSeconds: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      catchUpSeconds.push(await catchUp(kind, options));
      options.log(
        `  angos → ${kind}: ${options.tags} tags to a fresh downstream #${round + 1}: ${catchUpSeconds.at(-1)?.toFixed(1)} s`,
      );
    }
    const steady = await steadyState(kind, options);
    options.log(
      `  angos → ${kind}: ${steady.pushes} pushes at ${steady.achievedRate.toFixed(1)}/s: lag p50 ${steady.p50Ms.toFixed(0)} ms, p99 ${steady.p99Ms.toFixed(0)} ms, max ${steady.maxMs.toFixed(0)} ms, gauge max ${steady.gaugeMaxSeconds} s`,
    );
    figures.push({ downstream: kind, catchUpSeconds, steady });
  }
  return figures;
}

/** The table of the figures, one column per downstream. */
export function replicationTable(
  figures: readonly ReplicationFigures[],
  options: ReplicationOptions,
): string {
  const header = ['measure', 'unit', ...figures.map((figure) => `angos → ${figure.downstream}`)];
  const cell = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '—');
  const rows: string[][] = [
    [
      `${options.tags.toLocaleString('en')}-tag namespace to a fresh downstream (scrub --replicate)`,
      's',
      ...figures.map((figure) => cell(median(figure.catchUpSeconds))),
    ],
    [
      'the same, tags per second',
      'tags/s',
      ...figures.map((figure) => cell(options.tags / median(figure.catchUpSeconds), 0)),
    ],
    ['pushes achieved (target)', `/s (${options.rate})`, ...figures.map((f) => cell(f.steady.achievedRate))],
    ['201 on the source → visible downstream, p50', 'ms', ...figures.map((f) => cell(f.steady.p50Ms, 0))],
    ['the same, p99', 'ms', ...figures.map((f) => cell(f.steady.p99Ms, 0))],
    ['the same, max', 'ms', ...figures.map((f) => cell(f.steady.maxMs, 0))],
    ['max angos_replication_lag_seconds', 's', ...figures.map((f) => cell(f.steady.gaugeMaxSeconds))],
  ];
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}
