import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '@angos/observability';
import { ROUTE_ACTIONS, UI_ASSET_ACTION } from '@angos/oci';
import { OciClient, skipWithout } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningService, type RunningWorker, startService, startWorker } from '../src/index.js';
import { baseConfig, useRedisServer, useWorkspace } from './helpers.js';
import {
  type DocumentedMetric,
  documentedMetrics,
  documentedRoutes,
  isProcessMetric,
  type Publisher,
  seriesNames,
} from './metrics-doc.js';

/**
 * Drift test: each process, started as the CLI starts it, lists on `/metrics` exactly the
 * metrics docs/metrics.md says it publishes, with their types; every series it shows carries
 * exactly the documented labels. Each process runs in the configuration where it publishes the
 * most: the serving ones drain their own job queue (no `[global.job_queue]`, so replication jobs
 * run there), the worker with `[global.job_queue]` and a Redis lock; a pull-through repository is
 * configured. A push and a pull through the server and through the gateway make series appear.
 */

const ws = useWorkspace();
const documented = documentedMetrics();
const routes = new Set(documentedRoutes());

interface Scraped {
  /** `# TYPE` lines: name → type. */
  readonly types: Map<string, string>;
  /** Sample lines: series name, its label names (sorted, `le` left out) and their values. */
  readonly samples: { series: string; labels: string[]; values: Record<string, string> }[];
}

function parseExposition(text: string): Scraped {
  const types = new Map<string, string>();
  const samples: Scraped['samples'] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1] ?? '', type[2] ?? '');
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!sample) throw new Error(`unparsable sample: ${line}`);
    const pairs = [...(sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(
      (m) => [m[1] ?? '', m[2] ?? ''] as const,
    );
    samples.push({
      series: sample[1] ?? '',
      labels: pairs
        .map(([label]) => label)
        .filter((label) => label !== 'le')
        .sort(),
      values: Object.fromEntries(pairs),
    });
  }
  return { types, samples };
}

async function scrape(address: { host: string; port: number }): Promise<Scraped> {
  const response = await fetch(`http://${address.host}:${address.port}/metrics`);
  expect(response.status).toBe(200);
  return parseExposition(await response.text());
}

/** What docs/metrics.md and `/metrics` disagree on for one process; empty when they agree. */
function drift(publisher: Publisher, scraped: Scraped): string[] {
  const expected = new Map(
    documented.filter((metric) => metric.publishedBy.includes(publisher)).map((m) => [m.name, m] as const),
  );
  const problems: string[] = [];
  for (const [name, type] of scraped.types) {
    if (isProcessMetric(name)) continue;
    const metric = expected.get(name);
    if (metric === undefined)
      problems.push(`${name} (${type}) is on /metrics but not documented for ${publisher}`);
    else if (metric.type !== type) problems.push(`${name} is a ${type}, documented as a ${metric.type}`);
  }
  for (const name of expected.keys()) {
    if (!scraped.types.has(name)) {
      problems.push(`${name} is documented for ${publisher} but not on its /metrics`);
    }
  }
  const bySeries = new Map<string, DocumentedMetric>();
  for (const metric of expected.values())
    for (const series of seriesNames(metric)) bySeries.set(series, metric);
  for (const { series, labels, values } of scraped.samples) {
    const metric = bySeries.get(series);
    if (metric === undefined) continue; // process metrics, or reported above
    if (labels.join(',') !== metric.labels.join(',')) {
      problems.push(`${series} has labels [${labels}], documented [${metric.labels}]`);
    }
    const route = values['route'];
    if (route !== undefined && !routes.has(route))
      problems.push(`${series} has route="${route}", not a documented route`);
  }
  return [...new Set(problems)];
}

/** A blob, an image manifest naming it, pushed and pulled back. */
async function pushAndPull(baseUrl: string): Promise<void> {
  const client = new OciClient(baseUrl);
  const layer = await client.pushBlob('team/app', randomBytes(64));
  const config = await client.pushBlob('team/app', Buffer.from('{}'));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: 64 }],
  });
  expect(
    (await client.pushManifest('team/app', 'v1', manifest, 'application/vnd.oci.image.manifest.v1+json'))
      .status,
  ).toBe(201);
  expect((await client.getManifest('team/app', 'v1')).status).toBe(200);
  expect((await client.getBlob('team/app', layer)).status).toBe(200);
}

const ALLOW = '[global.access_policy]\ndefault = "allow"\n';
/** A pull-through repository: its upstream is never asked (nothing pulls from it here). */
const PULL_THROUGH = '[repository."mirror"]\n[[repository."mirror".upstream]]\nurl = "http://127.0.0.1:9"\n';
const LOCAL = '127.0.0.1:0';

const running: Array<RunningService | RunningWorker> = [];

function started<T extends RunningService | RunningWorker>(process: T): T {
  running.push(process);
  return process;
}

/** Closes what the tests of a describe started; registered after its Redis, so it runs first. */
function closeStarted(): void {
  afterAll(async () => {
    await Promise.all(running.splice(0).map((process) => process.close()));
  });
}

it('docs/metrics.md names every publisher of each metric it lists, and the routes', () => {
  expect(documented.length).toBeGreaterThan(30);
  expect(documented.filter((metric) => metric.publishedBy.length === 0)).toEqual([]);
  // Every action a request can perform (a mount is a start-upload with ?mount=), and the rest.
  const actions = Object.values(ROUTE_ACTIONS).flatMap((row) => Object.values(row));
  const labels = new Set([
    ...actions,
    'mount-blob',
    UI_ASSET_ACTION,
    'healthz',
    'readyz',
    'metrics',
    'unknown',
  ]);
  expect([...routes].sort()).toEqual([...labels].sort());
});

describe('angos server', () => {
  closeStarted();

  it('publishes the metrics docs/metrics.md lists for it', async () => {
    const configPath = join(ws().dir, 'server.toml');
    await writeFile(configPath, baseConfig(join(ws().dir, 'server'), 0, ALLOW + PULL_THROUGH));
    const server = started(
      await startService({ kind: 'server', configPath, listen: LOCAL, logger: silentLogger }),
    );
    await pushAndPull(`http://127.0.0.1:${server.address.port}`);
    expect(drift('server', await scrape(server.address))).toEqual([]);
  });
});

describe.skipIf(skipWithout('the split services metrics drift test', 'redis-server'))(
  'angos gateway, registry-api, pull-through-cache and worker',
  () => {
    const redis = useRedisServer();
    closeStarted();
    const token = randomBytes(24).toString('hex');
    let backends: { api: RunningService; cache: RunningService; worker: RunningWorker };
    let gateway: RunningService;

    beforeAll(async () => {
      const dir = join(ws().dir, 'split');
      const lock = `[metadata_store.fs.lock_strategy.redis]\nurl = "${redis().url}"\nttl = 5\n`;
      const services = (api: number, cache: number) =>
        `[services]\nregistry_api_url = "http://127.0.0.1:${api}"\npull_through_cache_url = "http://127.0.0.1:${cache}"\ninternal_token = "${token}"\n`;
      const behind = join(ws().dir, 'behind.toml');
      await writeFile(behind, baseConfig(dir, 0, lock + ALLOW + PULL_THROUGH + services(1, 1)));
      const workerConfig = join(ws().dir, 'worker.toml');
      await writeFile(workerConfig, baseConfig(dir, 0, `${lock}[global.job_queue]\n${ALLOW}${PULL_THROUGH}`));
      const start = (kind: 'registry-api' | 'pull-through-cache') =>
        startService({ kind, configPath: behind, listen: LOCAL, logger: silentLogger }).then(started);
      const [api, cache, worker] = await Promise.all([
        start('registry-api'),
        start('pull-through-cache'),
        startWorker({ configPath: workerConfig, listen: LOCAL, logger: silentLogger }).then(started),
      ]);
      backends = { api, cache, worker };
      const front = join(ws().dir, 'gateway.toml');
      await writeFile(
        front,
        baseConfig(dir, 0, ALLOW + PULL_THROUGH + services(api.address.port, cache.address.port)),
      );
      gateway = started(
        await startService({ kind: 'gateway', configPath: front, listen: LOCAL, logger: silentLogger }),
      );
      await pushAndPull(`http://127.0.0.1:${gateway.address.port}`);
    }, 60_000);

    it('gateway', async () => {
      expect(drift('gateway', await scrape(gateway.address))).toEqual([]);
    });

    it('registry-api', async () => {
      expect(drift('registry-api', await scrape(backends.api.address))).toEqual([]);
    });

    it('pull-through-cache', async () => {
      expect(drift('pull-through-cache', await scrape(backends.cache.address))).toEqual([]);
    });

    it('worker, which counts its own requests like every service', async () => {
      const { host, port } = backends.worker.address;
      expect((await fetch(`http://${host}:${port}/healthz`)).status).toBe(200);
      const scraped = await scrape(backends.worker.address);
      expect(drift('worker', scraped)).toEqual([]);
      expect(scraped.samples).toContainEqual(
        expect.objectContaining({
          series: 'http_requests_total',
          values: { method: 'GET', route: 'healthz', status: '200' },
        }),
      );
    });
  },
);
