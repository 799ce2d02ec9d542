import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { type AngosInstance, OciClient, startAngos } from '@angos/test-support';
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

/** One GET on `agent`'s connections; resolves with its status once the body has been read. */
function get(path: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: '127.0.0.1', port, path }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', reject);
    req.end();
  });
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
    const digest = await new OciClient(angos.url).pushBlob('memory/small', randomBytes(4096));
    const path = `/v2/memory/small/blobs/${digest}`;
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const getAll = async (count: number) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: CONNECTIONS }, async () => {
          while (next++ < count) expect(await get(path, agent)).toBe(200);
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
