#!/usr/bin/env node
/**
 * `pnpm bench`: runs this registry and CNCF distribution side by side on loopback, with the same
 * client and the same data, and prints the median of each scenario with the ratio ours/theirs.
 * Then the pull-through cache scenario (pull-through.ts, `--cache-clients N`): the angos subjects
 * as caches and distribution in proxy mode, in front of one upstream distribution. Then the job
 * queue scenario (jobs.ts, `--jobs N`, `--job-drain-limit SECS`), on fs and on the same RGW as
 * angos-s3. Then the event webhook scenario (events.ts, `--event-pushes N`): push p99 of `angos
 * server` with an async webhook that answers and with one that is down. Then the replication
 * scenario (replication.ts, `--replication-tags N`, `--replication-seconds S`): catch-up of a fresh
 * downstream and steady-state lag, to Angos and to distribution.
 * A benchmark, not a test: it asserts nothing beyond "the registry answered correctly".
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, type S3TestServer, startS3TestServer } from '@angos/test-support';
import { coresUsedBy } from './cpu.js';
import { benchEvents, EVENTS_SCENARIO, type EventFigures, eventsTable } from './events.js';
import { benchJobQueue, type JobQueueFigures, jobQueueTable } from './jobs.js';
import {
  benchPullThrough,
  PULL_THROUGH_SCENARIO,
  PULL_THROUGH_SUBJECTS,
  type PullThroughFigures,
  pullThroughTable,
} from './pull-through.js';
import {
  benchReplication,
  type DownstreamKind,
  REPLICATION_SCENARIO,
  type ReplicationFigures,
  type ReplicationOptions,
  replicationTable,
} from './replication.js';
import { totalRss } from './rss.js';
import { benchScale, SCALE_SCENARIO, SCALE_SUBJECTS, type ScaleFigures, scaleTable } from './scale.js';
import { type Scenario, scenarios, scratchDir, warmUp } from './scenarios.js';
import { median } from './stats.js';
import {
  RATIO_PAIRS,
  S3_SUBJECTS,
  SUBJECT_NAMES,
  type Subject,
  type SubjectName,
  startSubject,
} from './subjects.js';
import { benchWebUi, WEB_UI_SCENARIO, type WebUiFigures, webUiTable } from './web-ui.js';

type S3Endpoint = Omit<S3TestServer, 'stop'>;

const MiB = 1024 * 1024;
const JOB_QUEUE_SCENARIO = 'job queue';

interface Figures {
  /** scenario name → subject name → the figure of each round */
  rounds: Record<string, Record<string, number[]>>;
  /** scenario name → subject name → the cores its processes used in each round (/proc CPU time / wall time) */
  cores: Record<string, Record<string, number[]>>;
  memory: Record<string, { idleMiB: number; peakMiB: number; afterLoadMiB: number }>;
}

function available(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function measure(
  name: SubjectName,
  list: readonly Scenario[],
  rounds: number,
  figures: Figures,
  s3: () => Promise<S3Endpoint>,
): Promise<void> {
  const subject: Subject = await startSubject(name, s3);
  try {
    await warmUp(subject);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idle = await totalRss(subject.pids);
    let peak = idle;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await totalRss(subject.pids));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    for (const scenario of list) {
      const perSubject = figures.rounds[scenario.name] ?? {};
      figures.rounds[scenario.name] = perSubject;
      const values: number[] = [];
      perSubject[name] = values;
      const cores: number[] = [];
      figures.cores[scenario.name] = { ...figures.cores[scenario.name], [name]: cores };
      for (let round = 0; round < rounds; round++) {
        const measured = await coresUsedBy(subject.pids, () => scenario.run(subject, round));
        values.push(measured.result);
        cores.push(measured.cores);
        process.stderr.write(
          `  ${name}: ${scenario.name} #${round + 1}: ${values.at(-1)!.toFixed(1)} ${scenario.unit}, ${measured.cores.toFixed(2)} cores\n`,
        );
      }
    }
    sampling = false;
    await sampler;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    figures.memory[name] = {
      idleMiB: idle / MiB,
      peakMiB: peak / MiB,
      afterLoadMiB: (await totalRss(subject.pids)) / MiB,
    };
  } finally {
    await subject.stop();
  }
}

function format(value: number | undefined): string {
  if (value === undefined) return '—';
  return value >= 100 ? value.toFixed(0) : value.toFixed(2);
}

/** The ratio columns whose two subjects both ran. */
function ratioPairs(subjects: readonly SubjectName[]) {
  return RATIO_PAIRS.filter(([ours, theirs]) => subjects.includes(ours) && subjects.includes(theirs));
}

function table(list: readonly Scenario[], subjects: readonly SubjectName[], figures: Figures): string {
  const pairs = ratioPairs(subjects);
  const header = ['scenario', 'unit', ...subjects, ...pairs.map(([ours, theirs]) => `${ours} / ${theirs}`)];
  const ratios = (values: ReadonlyArray<number | undefined>) =>
    pairs.map(([ours, theirs]) => {
      const a = values[subjects.indexOf(ours)];
      const b = values[subjects.indexOf(theirs)];
      return a !== undefined && b !== undefined ? `${(a / b).toFixed(2)}×` : '—';
    });
  const rows: string[][] = [];
  for (const scenario of list) {
    const medians = subjects.map((name) => {
      const values = figures.rounds[scenario.name]?.[name];
      return values && values.length > 0 ? median(values) : undefined;
    });
    rows.push([scenario.name, scenario.unit, ...medians.map(format), ...ratios(medians)]);
  }
  for (const [label, key] of [
    ['RSS at idle', 'idleMiB'],
    ['RSS peak', 'peakMiB'],
    ['RSS after load', 'afterLoadMiB'],
  ] as const) {
    const values = subjects.map((name) => figures.memory[name]?.[key]);
    rows.push([label, 'MiB', ...values.map(format), ...ratios(values)]);
  }
  const lines = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`);
  return lines.join('\n');
}

/** The cores each subject's processes kept busy per scenario (median over rounds). */
function coresTable(list: readonly Scenario[], subjects: readonly SubjectName[], figures: Figures): string {
  const header = ['scenario', ...subjects];
  const rows = list.map((scenario) => [
    scenario.name,
    ...subjects.map((name) => {
      const values = figures.cores[scenario.name]?.[name];
      return values && values.length > 0 ? median(values).toFixed(2) : '—';
    }),
  ]);
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      subjects: { type: 'string', default: SUBJECT_NAMES.join(',') },
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      jobs: { type: 'string' },
      'job-drain-limit': { type: 'string', default: '600' },
      'cache-clients': { type: 'string', default: '10' },
      'replication-tags': { type: 'string' },
      'replication-seconds': { type: 'string' },
      'event-pushes': { type: 'string' },
      'web-ui-loads': { type: 'string', default: '20' },
      'scale-walk-limit': { type: 'string', default: '120' },
    },
  });
  const quick = values.quick ?? false;
  const rounds = Number(values.rounds);
  let subjects = values.subjects!.split(',') as SubjectName[];
  const unknown = subjects.filter((name) => !SUBJECT_NAMES.includes(name));
  if (unknown.length > 0)
    throw new Error(`unknown subjects ${unknown.join(', ')}; known: ${SUBJECT_NAMES.join(', ')}`);
  if (!available('radosgw') && !process.env['ANGOS_TEST_S3_ENDPOINT']) {
    const skipped = subjects.filter((name) => S3_SUBJECTS.includes(name));
    if (skipped.length > 0)
      process.stderr.write(
        `radosgw is not installed (see scripts/bench.sh): skipping ${skipped.join(', ')}\n`,
      );
    subjects = subjects.filter((name) => !S3_SUBJECTS.includes(name));
  }
  if (!available('docker-registry')) {
    const skipped = subjects.filter((name) => name.startsWith('distribution'));
    if (skipped.length > 0)
      process.stderr.write(
        `docker-registry is not installed (apt-get install docker-registry): skipping ${skipped.join(', ')}\n`,
      );
    subjects = subjects.filter((name) => !name.startsWith('distribution'));
  }
  const dataDir = join(tmpdir(), 'angos-bench-data');
  await mkdir(dataDir, { recursive: true });
  const workDir = await scratchDir();
  const all = scenarios({
    blobBytes: quick ? 64 * MiB : 1024 * MiB,
    imageMiB: quick ? 16 : 256,
    loadSeconds: quick ? 3 : 10,
    tagCount: quick ? 2000 : 10_000,
    floodBlobMiB: quick ? 64 : 256,
    workDir: dataDir,
  });
  // `--only a,b`: the scenarios whose name holds one of the terms, and the side scenarios one of the
  // terms is part of the name of (`--only scale`, `--only job`).
  const only = values.only
    ?.toLowerCase()
    .split(',')
    .map((term) => term.trim())
    .filter((term) => term !== '');
  const selected = (side: string) => only === undefined || only.some((term) => side.includes(term));
  const list = only
    ? all.filter((scenario) => only.some((term) => scenario.name.toLowerCase().includes(term)))
    : all;
  // The job queue is no registry endpoint: its scenario drives libs/jobs in-process, after the subjects.
  const jobQueueScenario = selected(JOB_QUEUE_SCENARIO);
  const jobCount = Number(values.jobs ?? (quick ? 2000 : 10_000));
  // The pull-through cache is measured on subjects of its own (caches in front of an upstream).
  const pullThroughScenario = selected(PULL_THROUGH_SCENARIO);
  const cacheSubjects = subjects.filter((name) => PULL_THROUGH_SUBJECTS.includes(name));
  const cacheClients = Number(values['cache-clients']);
  const replicationScenario = selected(REPLICATION_SCENARIO);
  const replicationOptions: ReplicationOptions = {
    tags: Number(values['replication-tags'] ?? (quick ? 200 : 1000)),
    rate: 10,
    seconds: Number(values['replication-seconds'] ?? (quick ? 15 : 60)),
    rounds,
    log: (line) => process.stderr.write(`${line}\n`),
  };
  const eventsScenario = selected(EVENTS_SCENARIO);
  const eventPushes = Number(values['event-pushes'] ?? (quick ? 300 : 2000));
  // The web UI is measured in headless Chromium against a registry seeded for it.
  const webUiScenario = selected(WEB_UI_SCENARIO);
  // The scale scenario seeds a store of its own for each subject that has a form of it.
  const scaleScenario = selected(SCALE_SCENARIO);
  const scaleSubjects = subjects.filter((name) => SCALE_SUBJECTS.includes(name));
  const scaleRepositories = quick ? 1000 : 10_000;
  const scaleWalkLimit = Number(values['scale-walk-limit']);
  if (list.length > 0) {
    for (const tool of ['wrk', 'ab', 'skopeo']) {
      if (!available(tool)) throw new Error(`${tool} is required: apt-get install ${tool}`);
    }
  }
  // One Ceph RGW for the run, started when first needed: the angos-s3 subject and the job queue on S3.
  let s3Server: Promise<S3TestServer> | undefined;
  const s3 = () => {
    s3Server ??= startS3TestServer();
    return s3Server;
  };
  const figures: Figures = { rounds: {}, cores: {}, memory: {} };
  const jobFigures: JobQueueFigures[] = [];
  let cacheFigures: PullThroughFigures[] = [];
  let replicationFigures: ReplicationFigures[] = [];
  let eventFigures: EventFigures[] = [];
  let webUiFigures: WebUiFigures | undefined;
  let scaleFigures: ScaleFigures[] = [];
  try {
    if (list.length > 0) {
      for (const name of subjects) {
        process.stderr.write(`${name}\n`);
        await measure(name, list, rounds, figures, s3);
      }
    }
    if (pullThroughScenario && cacheSubjects.length > 0) {
      if (!available('docker-registry')) {
        process.stderr.write(
          `docker-registry is not installed (apt-get install docker-registry): skipping the ${PULL_THROUGH_SCENARIO}, which needs it as the upstream\n`,
        );
      } else {
        const without = subjects.filter((name) => !cacheSubjects.includes(name));
        const note = without.length > 0 ? ` (${without.join(', ')}: no cache form here)` : '';
        process.stderr.write(`${PULL_THROUGH_SCENARIO}: ${cacheSubjects.join(', ')}${note}\n`);
        cacheFigures = await benchPullThrough(cacheSubjects, {
          layerMiB: quick ? 16 : 256,
          smallLayerMiB: quick ? 1 : 4,
          clients: cacheClients,
          rounds,
          dataDir,
          workDir,
          log: (line) => process.stderr.write(`${line}\n`),
        });
      }
    }
    if (jobQueueScenario) {
      process.stderr.write(`${JOB_QUEUE_SCENARIO}: ${jobCount} no-op jobs\n`);
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const jobOptions = { jobs: jobCount, drainLimitMs: Number(values['job-drain-limit']) * 1000, log };
      jobFigures.push(await benchJobQueue('fs', jobOptions));
      if (available('radosgw') || process.env['ANGOS_TEST_S3_ENDPOINT'])
        jobFigures.push(await benchJobQueue('s3', jobOptions, await s3()));
      else process.stderr.write('radosgw is not installed (see scripts/bench.sh): job queue on fs only\n');
    }
    if (replicationScenario) {
      if (!available('redis-server')) {
        process.stderr.write(
          `redis-server is not installed (apt-get install redis-server): skipping the ${REPLICATION_SCENARIO} scenario, whose worker needs a shared lock\n`,
        );
      } else {
        const downstreams: DownstreamKind[] = available('docker-registry')
          ? ['angos', 'distribution']
          : ['angos'];
        process.stderr.write(`${REPLICATION_SCENARIO}: angos → ${downstreams.join(', ')}\n`);
        replicationFigures = await benchReplication(downstreams, replicationOptions);
      }
    }
    if (eventsScenario) {
      process.stderr.write(`${EVENTS_SCENARIO}: ${eventPushes} manifest pushes, 8 clients\n`);
      eventFigures = await benchEvents({
        pushes: eventPushes,
        clients: 8,
        log: (line) => process.stderr.write(`${line}\n`),
      });
    }
    if (webUiScenario) {
      const chromiumPath = process.env['ANGOS_CHROMIUM'] ?? '/usr/bin/chromium';
      if (!available(chromiumPath)) {
        process.stderr.write(
          `${chromiumPath} is not installed (apt-get install chromium): skipping the web ui\n`,
        );
      } else {
        const namespaces = quick ? 1000 : 10_000;
        process.stderr.write(`${WEB_UI_SCENARIO}: ${namespaces} namespaces × 10 tags\n`);
        webUiFigures = await benchWebUi({
          namespaces,
          tagsPerNamespace: 10,
          largeNamespaceTags: quick ? 1000 : 10_000,
          loads: Number(values['web-ui-loads']),
          workDir,
          chromium: chromiumPath,
          log: (line) => process.stderr.write(`${line}\n`),
        });
      }
    }
    if (scaleScenario && scaleSubjects.length > 0) {
      process.stderr.write(
        `${SCALE_SCENARIO}: ${scaleRepositories} repositories × 10 tags on ${scaleSubjects.join(', ')}\n`,
      );
      scaleFigures = await benchScale(
        scaleSubjects,
        {
          repositories: scaleRepositories,
          tagsPerRepository: 10,
          tagRepositories: 50,
          tagPageSize: 5,
          catalogPageSizes: [100, 1000],
          walkLimitSeconds: scaleWalkLimit,
          workDir,
          log: (line) => process.stderr.write(`${line}\n`),
        },
        s3,
      );
    }
  } finally {
    await rm(workDir, { recursive: true, force: true });
    await (await s3Server?.catch(() => undefined))?.stop();
  }
  const date = new Date().toISOString();
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const sections = [
    ...(list.length > 0
      ? [
          table(list, subjects, figures),
          `Cores used: the subject's CPU time (user + system, every thread, from /proc) over each round's wall-clock time, median.\n\n${coresTable(list, subjects, figures)}`,
        ]
      : []),
    ...(cacheFigures.length > 0
      ? [
          `Pull-through cache: an upstream distribution holds two images, each a ${quick ? 16 : 256} MiB layer, three ${quick ? 1 : 4} MiB layers and a config; every round starts the cache empty. Cold and warm pull: one client pulls the first image twice, as docker does (manifest by tag, then 3 blobs at a time). Then ${cacheClients} clients pull the second image at once. Upstream figures from its access log; GET and request counts are the range over rounds.\n\n${pullThroughTable(cacheFigures, { clients: cacheClients, layerMiB: quick ? 16 : 256 })}`,
        ]
      : []),
    ...(jobFigures.length > 0
      ? [
          `Job queue (libs/jobs in-process, one runner, pool of 4, memory lock, 1 s poll): enqueue and drain ${jobCount} no-op jobs; one pending-gauge refresh at that depth.\n\n${jobQueueTable(jobFigures)}`,
        ]
      : []),
    ...(replicationFigures.length > 0
      ? [
          `Replication: a source \`angos server\` (fs) replicates \`bench/app\` to a downstream, each image a config and a 4 KiB layer of its own; default \`max_concurrent_replication_jobs\` (4) and \`max_concurrent_pushes\` (4). Catch-up: the source holds ${replicationOptions.tags} tags, the downstream (fresh each round) none; one \`angos scrub --replicate\` queues a job per tag and drains them (handed to the source server, fs with the memory lock) until the downstream holds them all. Steady state (one run of ${replicationOptions.seconds} s): the source with \`[global.job_queue]\` and an \`angos worker\` (Redis lock, 1 s poll); ${replicationOptions.rate} new tags pushed per second, each timed from its 201 to the tag showing in the downstream's tag list (read every 50 ms); the lag gauge scraped from the source every second (refreshed every 5 s).\n\n${replicationTable(replicationFigures, replicationOptions)}`,
        ]
      : []),
    ...(eventFigures.length > 0
      ? [
          `Event webhooks: angos server on fs, ${eventPushes} manifest pushes by tag from 8 clients at once (each writes one async delivery job holding its manifest.push and tag.create events), with no webhook, an async webhook that answers, and one whose port is closed (max_retries = 3, so its deliveries are retried and then dead-lettered meanwhile).\n\n${eventsTable(eventFigures)}`,
        ]
      : []),
    ...(webUiFigures !== undefined ? [webUiSection(webUiFigures)] : []),
    ...(scaleFigures.length > 0 ? [scaleSection(scaleFigures, scaleWalkLimit)] : []),
  ];
  const text = `Benchmark ${date} on ${machine}; ${rounds} rounds, medians${quick ? ' (quick sizes)' : ''}.\n\n${sections.join('\n\n')}\n`;
  process.stdout.write(`${text}\n`);
  const results = join(repoRoot(), 'bench', 'results');
  await mkdir(results, { recursive: true });
  await writeFile(
    join(results, `${date.replace(/[:.]/g, '-')}.json`),
    JSON.stringify(
      {
        date,
        machine,
        rounds,
        quick,
        figures,
        pullThrough: cacheFigures,
        jobQueue: jobFigures,
        replication: replicationFigures,
        events: eventFigures,
        webUi: webUiFigures,
        scale: scaleFigures,
      },
      null,
      2,
    ),
  );
  await writeFile(join(results, 'latest.md'), text);
  if (scaleFigures.length > 0) {
    await writeFile(
      join(results, 'scale.md'),
      `Benchmark ${date} on ${machine}${quick ? ' (quick sizes)' : ''}.\n\n${scaleSection(scaleFigures, scaleWalkLimit)}\n`,
    );
  }
  // The web UI's figures also on their own, so that a run of that scenario alone keeps them.
  if (webUiFigures !== undefined) {
    await writeFile(
      join(results, 'web-ui.md'),
      `Benchmark ${date} on ${machine}.\n\n${webUiSection(webUiFigures)}\n`,
    );
  }
}

function scaleSection(figures: readonly ScaleFigures[], walkLimitSeconds: number): string {
  const first = figures[0]!;
  return `Scale: ${first.repositories.toLocaleString('en')} repositories (\`seed-<i mod 100>/app-<i>\`) holding ${first.tags.toLocaleString('en')} tags (10 each, three manifests per repository), written straight into each subject's store before it starts (angos: the storage drivers with the keys of libs/storage; distribution: its own layout, bench/src/distribution-seed.ts), 64 writes at once. One walk of each listing, page after page by the Link header: \`_catalog\` with n=100 and n=1000, and the tags of 50 repositories spread over the registry with n=5. Latency per request; a catalog walk stops at the first page ending after ${walkLimitSeconds} s (\`--scale-walk-limit\`). RSS of the subject's processes, seeded and idle, then 2 s after the walks.\n\n${scaleTable(figures)}`;
}

function webUiSection(figures: WebUiFigures): string {
  return `Web UI (\`angos server\`, fs, \`[ui] enabled\`, headless Debian Chromium, anonymous access): ${figures.namespaces.toLocaleString('en')} namespaces holding ${figures.tags.toLocaleString('en')} tags, seeded straight into the store in ${figures.seedSeconds.toFixed(0)} s. First meaningful paint of each page (navigation start to the first frame showing its data), the first load apart, then p50 and p95 over ${figures.loads} more loads of the same deep link (assets cached, as a user's browser has them). The bundle as registry-api serves it.\n\n${webUiTable(figures)}`;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
