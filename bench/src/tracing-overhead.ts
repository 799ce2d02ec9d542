#!/usr/bin/env node
/**
 * `pnpm bench-tracing`: what tracing costs on the hot paths. Runs `angos server` in-process on an
 * fs store three times — without `[observability.tracing]`, with it at `sampling_rate = 0`, and at
 * `1.0` exporting every span to a local OTLP receiver that decodes them — and measures, each time:
 * - small pushes and pulls (a 1 KiB blob, its manifest, the manifest and blob read back): the
 *   per-request cost of server spans, storage and lock spans, and trace ids in the access log;
 * - the throughput of one large blob pushed and pulled: blobs stream through the instrumented
 *   stores without a copy, so it must not move.
 * Client and server share the process (and its CPU): figures compare modes, not registries.
 * First, the storage wrapper alone: the cost per operation of a memory store's `get` bare,
 * instrumented with tracing off, and instrumented inside a sampled span (`--storage-ops`).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { startService } from '@angos/cli';
import { createLogger, createMetrics, inSpan, silentLogger, startTracing } from '@angos/observability';
import { createMetadataStore, instrumentMetadataStore, type MetadataStore } from '@angos/storage';
import { freePort, OciClient, type OtlpReceiver, startOtlpReceiver } from '@angos/test-support';

const MiB = 1024 * 1024;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json';

const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '400' },
    'blob-mib': { type: 'string', default: '256' },
    rounds: { type: 'string', default: '3' },
    'storage-ops': { type: 'string', default: '200000' },
  },
});
const OPS = Number(values.ops);
const BLOB_MIB = Number(values['blob-mib']);
const ROUNDS = Number(values.rounds);
const STORAGE_OPS = Number(values['storage-ops']);

/** Nanoseconds per `get` of one small value, best of five runs. */
async function nsPerGet(store: MetadataStore): Promise<number> {
  await store.put('ns/_manifests/tags/v1/link', '{"digest":"sha256:00"}');
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 5; run++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < STORAGE_OPS; i++) await store.get('ns/_manifests/tags/v1/link');
    best = Math.min(best, Number(process.hrtime.bigint() - started) / STORAGE_OPS);
  }
  return best;
}

/** The storage wrapper's own cost, before any server starts (tracing is started and stopped here). */
async function storageWrapperCost(receiver: OtlpReceiver): Promise<string[]> {
  const bare = await nsPerGet(createMetadataStore({ kind: 'memory' }));
  const metrics = createMetrics({ defaultMetrics: false });
  const off = await nsPerGet(instrumentMetadataStore(createMetadataStore({ kind: 'memory' }), metrics));
  const tracing = await startTracing({
    endpoint: receiver.url,
    samplingRate: 1,
    serviceName: 'angos-bench',
    logger: silentLogger,
  });
  const on = await inSpan('bench', {}, () =>
    nsPerGet(instrumentMetadataStore(createMetadataStore({ kind: 'memory' }), metrics)),
  );
  await tracing.shutdown();
  return [
    `Memory metadata store \`get\`, ${STORAGE_OPS} per run, best of 5: bare ${(bare / 1000).toFixed(2)} µs; ` +
      `instrumented, tracing off ${(off / 1000).toFixed(2)} µs; instrumented, in a sampled span ` +
      `(a span exported per get) ${(on / 1000).toFixed(2)} µs.`,
  ];
}

interface Mode {
  readonly name: string;
  readonly tracing: (receiver: OtlpReceiver) => string;
}

const MODES: readonly Mode[] = [
  { name: 'tracing off', tracing: () => '' },
  {
    name: 'sampling_rate 0',
    tracing: (r) => `[observability.tracing]\nendpoint = "${r.url}"\nsampling_rate = 0\n`,
  },
  {
    name: 'sampling_rate 1.0',
    tracing: (r) => `[observability.tracing]\nendpoint = "${r.url}"\nsampling_rate = 1.0\n`,
  },
];

interface Figures {
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly pushMiBs: number;
  readonly pullMiBs: number;
}

const percentile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

/** One push-and-pull of a small image: four requests that touch blobs, links and locks. */
async function smallImage(client: OciClient, i: number): Promise<void> {
  const layer = randomBytes(1024);
  const digest = await client.pushBlob('bench/small', layer);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: EMPTY_CONFIG,
      digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
      size: 2,
    },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: layer.length }],
  });
  const pushed = await client.pushManifest('bench/small', `t${i}`, manifest, OCI_MANIFEST);
  if (pushed.status !== 201) throw new Error(`manifest push: HTTP ${pushed.status} ${pushed.text}`);
  if ((await client.getManifest('bench/small', `t${i}`)).status !== 200) throw new Error('manifest pull');
  if ((await client.getBlob('bench/small', digest)).status !== 200) throw new Error('blob pull');
}

/** Pulls a blob into a sink that keeps nothing, to time the server's stream alone. */
async function pullInto(client: OciClient, digest: string): Promise<number> {
  const response = await client.request('GET', `/v2/bench/large/blobs/${digest}`);
  if (response.status !== 200 || response.body === null)
    throw new Error(`blob pull: HTTP ${response.status}`);
  let bytes = 0;
  await response.body.pipeTo(
    Writable.toWeb(
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          bytes += chunk.length;
          callback();
        },
      }),
    ),
  );
  return bytes;
}

async function measure(mode: Mode, receiver: OtlpReceiver, round: number): Promise<Figures> {
  const dir = await mkdtemp(join(tmpdir(), 'angos-bench-tracing-'));
  const port = await freePort();
  const configPath = join(dir, 'config.toml');
  await writeFile(
    configPath,
    [
      `[server]\nbind_address = "127.0.0.1"\nport = ${port}`,
      `[blob_store.fs]\nroot_dir = ${JSON.stringify(join(dir, 'data'))}`,
      '[global.access_policy]\ndefault = "allow"',
      mode.tracing(receiver),
    ].join('\n\n'),
  );
  // The access log is written (to nowhere): with tracing it carries the trace ids.
  const logger = createLogger({
    filter: 'info',
    format: 'json',
    destination: new Writable({ write: (_c, _e, cb) => cb() }),
  });
  const service = await startService({ kind: 'server', configPath, logger });
  const client = new OciClient(`http://127.0.0.1:${service.address.port}`);
  try {
    await client.pushBlob('bench/small', Buffer.from('{}')); // the empty config every manifest names
    for (let i = 0; i < 20; i++) await smallImage(client, 1_000_000 + i); // warm-up
    const latencies: number[] = [];
    const started = performance.now();
    for (let i = 0; i < OPS; i++) {
      const t = performance.now();
      await smallImage(client, i);
      latencies.push(performance.now() - t);
    }
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);

    const blob = randomBytes(BLOB_MIB * MiB);
    let t = performance.now();
    const digest = await client.pushBlob('bench/large', blob);
    const pushMiBs = BLOB_MIB / ((performance.now() - t) / 1000);
    t = performance.now();
    const bytes = await pullInto(client, digest);
    if (bytes !== blob.length) throw new Error(`pulled ${bytes} bytes of ${blob.length}`);
    const pullMiBs = BLOB_MIB / ((performance.now() - t) / 1000);
    process.stderr.write(`  ${mode.name}, round ${round}: done\n`);
    return {
      opsPerSec: OPS / seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      pushMiBs,
      pullMiBs,
    };
  } finally {
    await service.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const median = (list: readonly number[]): number =>
  [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0;

async function main(): Promise<void> {
  const receiver = await startOtlpReceiver();
  const results = new Map<string, Figures[]>();
  const storage = await storageWrapperCost(receiver);
  process.stderr.write(`  ${storage.join('')}\n`);
  try {
    // Rounds interleave the modes, so a machine that slows down mid-run slows them all alike.
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of MODES) {
        const figures = await measure(mode, receiver, round);
        results.set(mode.name, [...(results.get(mode.name) ?? []), figures]);
      }
    }
  } finally {
    await receiver.close();
  }
  const rows = [...results].map(([name, runs]) => {
    const pick = (key: keyof Figures) => median(runs.map((run) => run[key]));
    return `| ${name} | ${pick('opsPerSec').toFixed(1)} | ${pick('p50Ms').toFixed(2)} | ${pick('p99Ms').toFixed(2)} | ${pick('pushMiBs').toFixed(0)} | ${pick('pullMiBs').toFixed(0)} |`;
  });
  console.log(
    [
      `Small images (4 requests each), ${OPS} per round; one ${BLOB_MIB} MiB blob; median of ${ROUNDS} rounds.`,
      '',
      '| Mode | images/s | p50 ms | p99 ms | blob push MiB/s | blob pull MiB/s |',
      '|---|---|---|---|---|---|',
      ...rows,
      '',
      `Spans received: ${receiver.spans().length}; export requests refused: ${receiver.refused}.`,
      '',
      ...storage,
    ].join('\n'),
  );
}

await main();
