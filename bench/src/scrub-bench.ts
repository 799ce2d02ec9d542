#!/usr/bin/env node
/**
 * `pnpm bench-scrub`: the scrub benchmark of issue 2.5, independent of the registry subjects of
 * `pnpm bench` (scrub is a batch process, not a server). Writes a healthy fs store of 100,000
 * manifests across 10,000 namespaces (`--namespaces`, `--manifests` per namespace; `--quick`:
 * 1,000 × 10), then runs `angos scrub` on it as an operator does, and prints for each run the
 * wall time, the peak resident memory of the process (its own `maxRSS`, reported at exit) and its
 * peak live heap. Memory must stay bounded: it must not grow with the size of the store.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { angosLauncher, repoRoot } from '@angos/test-support';
import { writeScrubStore } from './scrub-store.js';

const MiB = 1024 * 1024;

/** The runs measured: every check that walks the store, then the same with a keep-all retention. */
const RUNS: ReadonlyArray<{ name: string; args: readonly string[] }> = [
  { name: 'scrub -t -m -l -M -R -b', args: ['-t', '-m', '-l', '-M', '-R', '-b'] },
  { name: 'scrub -t -m -l -M -R -b -r (keep-all rule)', args: ['-t', '-m', '-l', '-M', '-R', '-b', '-r'] },
];

interface Figures {
  readonly name: string;
  readonly seconds: number;
  readonly peakMiB: number;
  readonly liveHeapMiB: number;
  readonly keysWalked: number;
  readonly repairs: number;
}

/**
 * A preload that writes, at exit, to $SCRUB_BENCH_MEMORY: the process's peak resident memory (kB),
 * and its peak live heap: the heap in use right after a full collection, sampled every second.
 * Peak RSS also holds garbage not yet collected (V8 grows its heap with the allocation rate); the
 * live heap is what the run holds on to, the figure that must not grow with the store.
 */
const PRELOAD = `import { writeFileSync } from 'node:fs';
let liveHeap = 0;
setInterval(() => {
  globalThis.gc();
  liveHeap = Math.max(liveHeap, process.memoryUsage().heapUsed);
}, 1000).unref();
process.on('exit', () =>
  writeFileSync(process.env.SCRUB_BENCH_MEMORY, JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, liveHeap })),
);
`;

async function runScrub(
  work: string,
  config: string,
  run: { name: string; args: readonly string[] },
): Promise<Figures> {
  const memoryFile = join(work, 'memory.json');
  const preload = join(work, 'memory.mjs');
  await writeFile(preload, PRELOAD);
  const started = process.hrtime.bigint();
  const child = spawn(angosLauncher(), ['-c', config, 'scrub', ...run.args], {
    env: {
      ...process.env,
      RUST_LOG: 'info',
      NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --expose-gc --import ${preload}`.trim(),
      SCRUB_BENCH_MEMORY: memoryFile,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let tail = '';
  child.stderr.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-64 * 1024);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (code !== 0) throw new Error(`${run.name} exited with ${code}:\n${tail}`);
  const summary = tail
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .find((record) => record['message'] === 'scrub finished');
  if (summary === undefined) throw new Error(`${run.name}: no summary line:\n${tail}`);
  const memory = JSON.parse(await readFile(memoryFile, 'utf8')) as { maxRssKiB: number; liveHeap: number };
  return {
    name: run.name,
    seconds,
    peakMiB: (memory.maxRssKiB * 1024) / MiB,
    liveHeapMiB: memory.liveHeap / MiB,
    keysWalked: Number(summary['keys_walked']),
    repairs: Number(summary['repairs']),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      namespaces: { type: 'string' },
      manifests: { type: 'string' },
      quick: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
    },
  });
  const namespaces = Number(values.namespaces ?? (values.quick ? 1000 : 10_000));
  const perNamespace = Number(values.manifests ?? 10);
  const work = await mkdtemp(join(tmpdir(), 'angos-scrub-bench-'));
  const root = join(work, 'data');
  const config = join(work, 'config.toml');
  await writeFile(
    config,
    [
      '[server]',
      'bind_address = "127.0.0.1"',
      '[blob_store.fs]',
      `root_dir = ${JSON.stringify(root)}`,
      '[global.retention_policy]',
      'rules = ["true"]',
    ].join('\n'),
  );
  const figures: Figures[] = [];
  try {
    const manifests = namespaces * perNamespace;
    process.stderr.write(`writing ${manifests} manifests across ${namespaces} namespaces in ${root}\n`);
    const writeStarted = Date.now();
    await writeScrubStore(root, { namespaces, manifestsPerNamespace: perNamespace }, (done) =>
      process.stderr.write(`  ${done} namespaces written\n`),
    );
    process.stderr.write(`store written in ${((Date.now() - writeStarted) / 1000).toFixed(1)} s\n`);
    for (const run of RUNS) {
      const result = await runScrub(work, config, run);
      if (result.repairs !== 0) throw new Error(`${run.name}: ${result.repairs} repairs on a healthy store`);
      figures.push(result);
      process.stderr.write(
        `  ${run.name}: ${result.seconds.toFixed(1)} s, peak RSS ${result.peakMiB.toFixed(0)} MiB, peak live heap ${result.liveHeapMiB.toFixed(1)} MiB\n`,
      );
    }
  } finally {
    if (!values.keep) await rm(work, { recursive: true, force: true });
  }
  const date = new Date().toISOString();
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const rows = figures.map(
    (f) =>
      `| ${f.name} | ${f.seconds.toFixed(1)} | ${f.peakMiB.toFixed(0)} | ${f.liveHeapMiB.toFixed(1)} | ${f.keysWalked} | ${f.repairs} |`,
  );
  const text = [
    `Scrub benchmark ${date} on ${machine}: a healthy fs store of ${namespaces * perNamespace} manifests across ${namespaces} namespaces.`,
    '',
    '| run | wall s | peak RSS MiB | peak live heap MiB | keys walked | repairs |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
  process.stdout.write(`${text}\n`);
  const results = join(repoRoot(), 'bench', 'results');
  await mkdir(results, { recursive: true });
  await writeFile(
    join(results, `scrub-${date.replace(/[:.]/g, '-')}.json`),
    JSON.stringify({ date, machine, namespaces, perNamespace, figures }, null, 2),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`bench-scrub failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
