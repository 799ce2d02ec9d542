import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FsBlobStore, FsMetadataStore, openStores } from '@angos/storage';
import { type S3TestServer, s3Table, s3TestStores, startAngos, startS3TestServer } from '@angos/test-support';
import { type CountingProxy, startCountingProxy } from './counting-proxy.js';
import { LARGE_NAMESPACE, seedManifests, seedNamespaceName, seedNamespaces } from './namespace-seed.js';

/**
 * The extension API on a large registry: 10,000 namespaces and 100,000 tags (seedNamespaces),
 * served by `angos server`, each page fetched cold once and then `--rounds` times; p50/p95 per
 * page, and on S3 the store requests one page costs (through a counting proxy).
 *
 *   node dist/ext-api-bench.js --backend fs [--root DIR] [--namespaces 10000] [--tags 10]
 *   node dist/ext-api-bench.js --backend s3            (starts Ceph RGW; ANGOS_TEST_S3_* for another)
 *
 * `--root` keeps the fs store between runs (seeded when it does not exist yet).
 */

interface Page {
  readonly label: string;
  readonly path: string;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function timed(url: string): Promise<{ ms: number; status: number; bytes: number }> {
  const started = performance.now();
  const reply = await fetch(url);
  const body = await reply.arrayBuffer();
  return { ms: performance.now() - started, status: reply.status, bytes: body.byteLength };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string', default: 'fs' },
      root: { type: 'string' },
      namespaces: { type: 'string', default: '10000' },
      tags: { type: 'string', default: '10' },
      'large-tags': { type: 'string', default: '5000' },
      rounds: { type: 'string', default: '20' },
    },
  });
  const namespaces = Number(values.namespaces);
  const tags = Number(values.tags);
  const largeTags = Number(values['large-tags']);
  const rounds = Number(values.rounds);
  const backend = values.backend === 's3' ? 's3' : 'fs';
  const shape = {
    namespaces,
    tagsPerNamespace: tags,
    largeNamespaceTags: largeTags,
    onProgress: (done: number) => {
      if (done % 2000 === 0) console.error(`  seeded ${done} namespaces`);
    },
  };

  let s3: S3TestServer | undefined;
  let proxy: CountingProxy | undefined;
  let config = '';
  let rootDir: string | undefined;
  let scratch: string | undefined;
  const seedStarted = performance.now();
  if (backend === 'fs') {
    if (values.root === undefined) scratch = await mkdtemp(join(tmpdir(), 'angos-ext-bench-'));
    rootDir = values.root ?? scratch!;
    const options = { syncToDisk: false };
    const stores = {
      metadata: new FsMetadataStore(rootDir, options),
      blobs: new FsBlobStore(rootDir, options),
    };
    if (!(await exists(join(rootDir, 'seed-0')))) {
      console.error(`seeding ${namespaces} namespaces x ${tags} tags into ${rootDir}`);
      await seedNamespaces(stores, shape);
    } else if (!(await exists(join(rootDir, LARGE_NAMESPACE)))) {
      await seedNamespaces(stores, { ...shape, namespaces: 0 });
    }
  } else {
    s3 = await startS3TestServer();
    proxy = await startCountingProxy(s3.endpoint);
    const prefix = `ext-bench-${Date.now()}`;
    console.error(`seeding ${namespaces} namespaces x ${tags} tags into S3 ${s3.endpoint} ${prefix}`);
    const stores = await openStores(s3TestStores(s3, prefix));
    await seedNamespaces(stores, shape);
    await stores.close();
    config = s3Table('blob_store.s3', { ...s3, endpoint: proxy.endpoint }, prefix);
  }
  const seedSeconds = (performance.now() - seedStarted) / 1000;

  // Ten repositories, for the namespace counts of `_repositories` (each governs 100 namespaces).
  const repositories = Array.from(
    { length: 10 },
    (_, i) => `[repository."seed-${i}"]\nimmutable_tags = false\n`,
  );
  const angos = await startAngos({
    mode: 'server',
    config: `${config}\n${repositories.join('\n')}`,
    ...(rootDir === undefined ? {} : { rootDir }),
    startTimeoutMs: 60_000,
  });
  const index = seedManifests().index.digest;
  const some = seedNamespaceName(4242);
  const pages: Page[] = [
    { label: 'tree: root (100 prefixes)', path: '/v2/_ext/_namespaces' },
    { label: 'tree: children of one prefix (n=100)', path: '/v2/_ext/_namespaces?parent=seed-42' },
    {
      label: 'tree: second page of that prefix',
      path: `/v2/_ext/_namespaces?parent=seed-42&n=50&last=seed-42/app-5142`,
    },
    { label: 'search q=app-99 (all namespaces)', path: '/v2/_ext/_namespaces?q=app-99' },
    { label: 'repositories (10, counting 10,000 namespaces)', path: '/v2/_ext/_repositories' },
    { label: `tags of ${some} (sort=name)`, path: `/v2/_ext/${some}/_tags` },
    { label: `tags of ${some} (sort=pushed desc)`, path: `/v2/_ext/${some}/_tags?sort=pushed&order=desc` },
    { label: `revisions of ${some}`, path: `/v2/_ext/${some}/_revisions` },
    { label: `manifest detail (index)`, path: `/v2/_ext/${some}/_manifests/sha256:${index.hex}` },
    {
      label: `tags of ${LARGE_NAMESPACE} (${largeTags} tags, n=100, by name)`,
      path: `/v2/_ext/${LARGE_NAMESPACE}/_tags`,
    },
    {
      label: `tags of ${LARGE_NAMESPACE} (${largeTags} tags, n=100, sort=pushed)`,
      path: `/v2/_ext/${LARGE_NAMESPACE}/_tags?sort=pushed&order=desc`,
    },
    {
      label: `revisions of ${LARGE_NAMESPACE} (reads every tag)`,
      path: `/v2/_ext/${LARGE_NAMESPACE}/_revisions`,
    },
  ];

  const lines = [
    `## extension API, ${backend}, ${namespaces} namespaces x ${tags} tags (+1 of ${largeTags}), angos server`,
    '',
    backend === 'fs' && values.root !== undefined && seedSeconds < 1
      ? 'store: reused'
      : `store seeded in ${seedSeconds.toFixed(1)} s`,
    '',
    `| page | cold ms | p50 ms | p95 ms | bytes |${backend === 's3' ? ' S3 requests (cold / warm) |' : ''}`,
    `|---|---|---|---|---|${backend === 's3' ? '---|' : ''}`,
  ];
  try {
    for (const page of pages) {
      const url = `${angos.url}${page.path}`;
      const before = proxy?.requests ?? 0;
      const cold = await timed(url);
      if (cold.status !== 200) throw new Error(`${page.path}: ${cold.status}`);
      const coldRequests = (proxy?.requests ?? 0) - before;
      const times: number[] = [];
      const warmBefore = proxy?.requests ?? 0;
      for (let round = 0; round < rounds; round++) times.push((await timed(url)).ms);
      const warmRequests = ((proxy?.requests ?? 0) - warmBefore) / rounds;
      times.sort((a, b) => a - b);
      const s3Column = backend === 's3' ? ` ${coldRequests} / ${warmRequests.toFixed(0)} |` : '';
      const line = `| ${page.label} | ${cold.ms.toFixed(0)} | ${percentile(times, 50).toFixed(0)} | ${percentile(times, 95).toFixed(0)} | ${cold.bytes} |${s3Column}`;
      lines.push(line);
      console.error(line);
    }
  } finally {
    await angos.stop();
    await proxy?.close();
    await s3?.stop();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }
  console.log(lines.join('\n'));
}

await main();
