#!/usr/bin/env node
// Peak memory of `angos server` on S3 during one large chunked upload (docker-style PATCH: no
// Content-Length, chunked transfer encoding), against a throw-away Ceph RGW (@angos/test-support's starter).
//
//   pnpm build && node bench/s3-upload-rss.mjs [--size 2GiB] [--part-size 50MiB] [--uniform] [--json]
//
// The configuration reference promises at most one buffered 5 MiB sub-part per coalesced chunked
// upload (non-uniform mode), and one part per upload in uniform mode; this measures the server's
// resident set (VmRSS sampled every 50 ms, and the kernel's high-water mark VmHWM) before and
// during the upload. An S3 server of the caller's own: ANGOS_TEST_S3_ENDPOINT (see
// libs/test-support/src/rgw.ts). CEPH_OBJECTSTORE=bluestore keeps RGW's data on disk.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'services', 'cli', 'dist', 'main.js');
const { startS3TestServer } = await import(join(root, 'libs', 'test-support', 'dist', 's3-server.js'));
const { S3Bucket } = await import(join(root, 'libs', 'storage', 'dist', 'index.js'));

const MiB = 1024 * 1024;
const UNITS = { B: 1, KiB: 1024, MiB, GiB: 1024 * MiB };

function parseSize(text) {
  const match = /^(\d+)(B|KiB|MiB|GiB)$/.exec(text);
  if (!match) throw new Error(`size "${text}": expected e.g. 512MiB or 2GiB`);
  return Number(match[1]) * UNITS[match[2]];
}

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '2GiB' },
    'part-size': { type: 'string', default: '50MiB' },
    uniform: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const size = parseSize(args.size);
const partSize = args['part-size'];

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** VmRSS and VmHWM of a process, in bytes. */
async function memoryOf(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

async function waitForReady(url, child) {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`angos server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) return;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('angos server did not become ready');
}

/** PATCH with chunked transfer encoding, streaming `total` bytes; resolves with their digest and the reply. */
function chunkedPatch(url, total) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const chunk = randomBytes(MiB);
    const req = request(
      url,
      { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream' } },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, digest: hash.digest('hex') }),
        );
      },
    );
    req.on('error', reject);
    let sent = 0;
    let index = 0;
    const write = () => {
      while (sent < total) {
        const piece = chunk.subarray(0, Math.min(MiB, total - sent));
        piece.writeUInt32BE(index++, 0); // every chunk distinct: nothing deduplicates
        hash.update(piece);
        sent += piece.length;
        if (!req.write(piece)) {
          req.once('drain', write);
          return;
        }
      }
      req.end();
    };
    write();
  });
}

/** Removes what the run stored (an S3 server given by ANGOS_TEST_S3_ENDPOINT outlives the run). */
async function wipe(keyPrefix) {
  const bucket = new S3Bucket({
    ...s3,
    keyPrefix,
    maxAttempts: 3,
    operationTimeoutSecs: 300,
    operationAttemptTimeoutSecs: 60,
  });
  try {
    const keys = [];
    for await (const key of bucket.listKeys('')) keys.push(key);
    await bucket.deleteMany(keys);
    for await (const upload of bucket.listMultipartUploads(''))
      await bucket.abortMultipartUpload(upload.key, upload.uploadId);
  } finally {
    bucket.destroy();
  }
}

const s3 = await startS3TestServer();
const dir = await mkdtemp(join(tmpdir(), 'angos-bench-'));
const keyPrefix = `angos-bench/${Date.now()}`;
let server;
try {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const configPath = join(dir, 'config.toml');
  await writeFile(
    configPath,
    [
      '[server]',
      'bind_address = "127.0.0.1"',
      `port = ${port}`,
      '[global.access_policy]',
      'default = "allow"',
      '[blob_store.s3]',
      `access_key_id = "${s3.accessKeyId}"`,
      `secret_key = "${s3.secretAccessKey}"`,
      `endpoint = "${s3.endpoint}"`,
      `bucket = "${s3.bucket}"`,
      `region = "${s3.region}"`,
      `key_prefix = "${keyPrefix}"`,
      `multipart_part_size = "${partSize}"`,
      `multipart_uniform_parts = ${args.uniform}`,
      '',
    ].join('\n'),
  );
  server = spawn(process.execPath, [cli, '-c', configPath, 'server'], {
    env: { ...process.env, RUST_LOG: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitForReady(url, server);
  // Let start-up settle, then measure the resting footprint.
  await fetch(`${url}/v2/`);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const baseline = await memoryOf(server.pid);

  let peakRss = baseline.rss;
  const sampler = setInterval(async () => {
    try {
      peakRss = Math.max(peakRss, (await memoryOf(server.pid)).rss);
    } catch {}
  }, 50);

  const started = performance.now();
  const created = await fetch(`${url}/v2/bench/blob/blobs/uploads/`, { method: 'POST' });
  if (created.status !== 202) throw new Error(`POST uploads: ${created.status}`);
  const location = new URL(created.headers.get('location'), url);
  const patched = await chunkedPatch(location, size);
  if (patched.status !== 202) throw new Error(`PATCH: ${patched.status}`);
  const afterPatch = performance.now();
  const digest = `sha256:${patched.digest}`;
  location.searchParams.set('digest', digest);
  const completed = await fetch(location, { method: 'PUT' });
  if (completed.status !== 201) throw new Error(`PUT: ${completed.status} ${await completed.text()}`);
  const finished = performance.now();
  clearInterval(sampler);
  const head = await fetch(`${url}/v2/bench/blob/blobs/${digest}`, { method: 'HEAD' });
  if (Number(head.headers.get('content-length')) !== size) throw new Error('stored blob has the wrong size');
  const end = await memoryOf(server.pid);

  const result = {
    size_bytes: size,
    multipart_part_size: partSize,
    multipart_uniform_parts: args.uniform,
    baseline_rss_mib: +(baseline.rss / MiB).toFixed(1),
    peak_rss_mib: +(Math.max(peakRss, end.hwm) / MiB).toFixed(1),
    peak_rss_sampled_mib: +(peakRss / MiB).toFixed(1),
    peak_over_baseline_mib: +((Math.max(peakRss, end.hwm) - baseline.rss) / MiB).toFixed(1),
    patch_secs: +((afterPatch - started) / 1000).toFixed(1),
    complete_secs: +((finished - afterPatch) / 1000).toFixed(1),
    throughput_mib_per_sec: +(size / MiB / ((afterPatch - started) / 1000)).toFixed(1),
  };
  if (args.json) console.log(JSON.stringify(result));
  else {
    console.log(
      `chunked upload of ${args.size} to angos server on S3 (part size ${partSize}${args.uniform ? ', uniform' : ''})`,
    );
    console.log(`  server RSS at rest:        ${result.baseline_rss_mib} MiB`);
    console.log(
      `  server peak RSS (VmHWM):   ${result.peak_rss_mib} MiB  (+${result.peak_over_baseline_mib} MiB)`,
    );
    console.log(
      `  PATCH: ${result.patch_secs} s (${result.throughput_mib_per_sec} MiB/s), PUT (verify + copy): ${result.complete_secs} s`,
    );
  }
} finally {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await once(server, 'exit');
  }
  await wipe(keyPrefix);
  await s3.stop();
  await rm(dir, { recursive: true, force: true });
}
