import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { type AngosInstance, startAngos } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * What a burst of small requests leaves resident in the shipped command (services/cli/bin/angos),
 * one serving thread. V8 let the heap grow to 4× what its last full collection kept, as it does
 * when collections are fast, and kept the pages of the heap once it shrank: +43–48 MiB after
 * 40,000 4 KiB blob GETs on the 2-core development machine. At 2× (heap-growth.ts) +6–8 MiB.
 */

const MiB = 1024 * 1024;
/** What the burst may leave behind: the heap's growth at 2×, and buffers of the sockets. */
const MAX_GROWTH_BYTES = 20 * MiB;
const CONNECTIONS = 50;
const REQUESTS = 40_000;

let angos: AngosInstance;
let port: number;

async function residentAnonymousBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /^RssAnon:\s+(\d+) kB$/m.exec(status);
  if (!kib) throw new Error('no RssAnon in /proc/<pid>/status');
  return Number(kib[1]) * 1024;
}

/** Sends one request; resolves with its status and Location. */
function send(
  method: string,
  path: string,
  body?: Buffer,
  agent?: Agent,
): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { 'content-type': 'application/octet-stream', 'content-length': body?.length ?? 0 },
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/** An upload as most clients send one: a POST for the session, a PUT of the whole blob. */
async function upload(repository: string, body: Buffer): Promise<number> {
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const session = await send('POST', `/v2/${repository}/blobs/uploads/`);
  if (session.status !== 202 || !session.location) return session.status;
  const location = new URL(session.location, `http://127.0.0.1:${port}`);
  location.searchParams.set('digest', digest);
  return (await send('PUT', `${location.pathname}${location.search}`, body)).status;
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  angos = await startAngos({ mode: 'server', launcher: true, workers: 1, env: { RUST_LOG: 'warn' } });
  port = Number(new URL(angos.url).port);
}, 30_000);

afterAll(async () => {
  await angos?.stop();
});

describe('the shipped command after a burst of small requests', () => {
  it('keeps its heap near what it uses', async () => {
    const blob = randomBytes(4096);
    expect(await upload('memory/small', blob)).toBe(201);
    const path = `/v2/memory/small/blobs/sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const getAll = async (count: number) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: CONNECTIONS }, async () => {
          while (next++ < count) expect((await send('GET', path, undefined, agent)).status).toBe(200);
        }),
      );
    };
    try {
      await getAll(2_000); // warm up
      await settle(500);
      const before = await residentAnonymousBytes(angos.pids[0]!);
      await getAll(REQUESTS);
      await settle(500);
      const after = await residentAnonymousBytes(angos.pids[0]!);
      expect(after - before, `RssAnon ${before / MiB} → ${after / MiB} MiB`).toBeLessThan(MAX_GROWTH_BYTES);
    } finally {
      agent.destroy();
    }
  }, 120_000);
});
