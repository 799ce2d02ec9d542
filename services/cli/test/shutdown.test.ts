import { once } from 'node:events';
import { type ClientRequest, request } from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  killAll,
  type LongRunning,
  logRecords,
  startAngos,
  type Workspace,
  waitForHttp,
  waitForRecord,
  workspace,
} from './helpers.js';

let ws: Workspace;
beforeAll(async () => {
  ws = await workspace();
});
const open: ClientRequest[] = [];
afterEach(() => {
  for (const upload of open.splice(0)) upload.destroy();
  killAll();
});
afterAll(async () => {
  await ws.remove();
});

function config(port: number, graceSecs: number, workers: number): string {
  return [
    '[server]',
    'bind_address = "127.0.0.1"',
    `port = ${port}`,
    `query_timeout_grace_period = ${graceSecs}`,
    `workers = ${workers}`,
    '',
    '[blob_store.fs]',
    `root_dir = ${JSON.stringify(join(ws.dir, 'data'))}`,
    '',
    '[global.access_policy]',
    'default = "allow"',
  ].join('\n');
}

/** A server with an upload whose PATCH has sent 10 of its 1000 bytes and then stalls. */
async function serverWithStalledUpload(graceSecs: number, workers = 1): Promise<LongRunning> {
  return (await stalledUpload(graceSecs, workers)).server;
}

async function stalledUpload(
  graceSecs: number,
  workers: number,
): Promise<{ server: LongRunning; port: number; upload: ClientRequest }> {
  const port = await freePort();
  await ws.writeConfig(config(port, graceSecs, workers));
  const server = startAngos(['-c', ws.configPath, 'server']);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`, server);
  const started = await fetch(`${url}/v2/stall/app/blobs/uploads/`, { method: 'POST' });
  expect(started.status).toBe(202);
  const location = started.headers.get('location') ?? '';
  const upload = request(`${url}${location}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream', 'content-length': '1000' },
  });
  upload.on('error', () => {});
  open.push(upload);
  upload.write(Buffer.alloc(10));
  // The upload is in flight once the server counts it, beside the /metrics request reading it.
  await waitForMetric(url, /^http_requests_in_flight 2$/m);
  return { server, port, upload };
}

async function waitForMetric(url: string, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!pattern.test(await (await fetch(`${url}/metrics`)).text())) {
    if (Date.now() > deadline) throw new Error(`metrics never matched ${pattern}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const shuttingDown = (record: Record<string, unknown>) =>
  record['message'] === 'shutting down, waiting for in-flight requests';
/** With serving threads, the main thread's line: each thread's own counts only its requests. */
const shuttingDownThreads = (record: Record<string, unknown>) =>
  record['message'] === 'shutting down serving threads';

describe('angos server shutdown (spawned)', () => {
  it.each([
    ['SIGINT', 130, 1],
    ['SIGTERM', 143, 1],
    ['SIGTERM', 143, 2],
  ] as const)(
    'logs the requests it waits for on %s; a second one logs and exits %i at once (%i serving threads)',
    async (signal, status, workers) => {
      const server = await serverWithStalledUpload(60, workers);
      server.child.kill(signal);
      const record = await waitForRecord(server, workers === 1 ? shuttingDown : shuttingDownThreads);
      expect(record).toMatchObject({
        level: 'INFO',
        target: 'angos',
        service: 'server',
        signal,
        in_flight: 1,
        grace_period_secs: 60,
      });
      // Still waiting for the upload.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(server.child.exitCode).toBeNull();

      const exited = once(server.child, 'exit');
      const secondAt = Date.now();
      server.child.kill(signal);
      const [code] = (await exited) as [number | null];
      expect(code).toBe(status);
      expect(Date.now() - secondAt).toBeLessThan(10_000);
      const second = await waitForRecord(
        server,
        (line) => line['message'] === 'second signal, exiting without waiting for in-flight requests',
      );
      expect(second).toMatchObject({ level: 'WARN', signal, status });
    },
  );

  it('lets serving threads drain for a grace period raised by a reload, past the initial one', async () => {
    const { server, port, upload } = await stalledUpload(1, 2);
    await ws.writeConfig(config(port, 12, 2));
    // Each serving thread applies the change on its own.
    const reloaded = () =>
      logRecords(server.output()).filter((line) => line['message'] === 'configuration reloaded').length;
    const deadline = Date.now() + 15_000;
    while (reloaded() < 2) {
      if (Date.now() > deadline) throw new Error(`not reloaded by both threads:\n${server.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const answered = new Promise<number | undefined>((resolve) => {
      upload.on('response', (response) => resolve(response.statusCode));
      upload.on('error', () => resolve(undefined));
    });
    server.child.kill('SIGTERM');
    // Past the initial grace period and the margin after it (1 + 5 s), inside the reloaded 12 s.
    await new Promise((resolve) => setTimeout(resolve, 7000));
    upload.end(Buffer.alloc(990));
    expect(await answered).toBe(202);
    const [code] = (await once(server.child, 'exit')) as [number | null];
    expect(code).toBe(0);
  }, 30_000);

  it('waits at most query_timeout_grace_period for a stalled upload, then exits 0', async () => {
    const server = await serverWithStalledUpload(2);
    const exited = once(server.child, 'exit');
    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    const waitedMs = Date.now() - signalledAt;
    expect(code).toBe(0);
    expect(waitedMs).toBeGreaterThanOrEqual(1900);
    expect(waitedMs).toBeLessThan(15_000);
    expect(await waitForRecord(server, shuttingDown)).toMatchObject({ in_flight: 1, grace_period_secs: 2 });
    await waitForRecord(
      server,
      (line) => line['message'] === 'shutdown grace period over, closing remaining connections',
    );
    await waitForRecord(server, (line) => line['message'] === 'stopped');
  });
});
