import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { S3LockManager } from '@angos/lock/s3';
import { afterEach, describe, expect, it } from 'vitest';
import { type Api, type Backend, s3Server, sha256, startApi } from './harness.js';

const S3: Backend = { name: 's3', blob: 's3', metadata: 's3' };

/** `max_hold_secs` of the test's S3 lock: far shorter than the PATCH below takes. */
const MAX_HOLD_SECS = 2;

/** Sends `chunks` as one streamed (chunked) request body, waiting `gapMs` before each. */
function sendSlowly(
  api: Api,
  method: string,
  path: string,
  chunks: readonly Buffer[],
  gapMs: number,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { hostname, port } = new URL(api.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port: Number(port), method, path, headers }, (res) => {
      const received: Buffer[] = [];
      res.on('data', (chunk: Buffer) => received.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(received).toString(),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    void (async () => {
      for (const chunk of chunks) {
        await sleep(gapMs);
        req.write(chunk);
      }
      req.end();
    })();
  });
}

describe.skipIf(!s3Server)('uploads under the S3 lock strategy', () => {
  let api: Api | undefined;
  let locks: S3LockManager | undefined;

  afterEach(async () => {
    await api?.close();
    await locks?.close();
    api = undefined;
    locks = undefined;
  });

  it('takes a PATCH and a PUT whose bodies stream for longer than max_hold_secs', async () => {
    locks = new S3LockManager({
      ...s3Server!,
      keyPrefix: `angos-upload-locks-test/${randomUUID()}`,
      ttlSecs: 9,
      maxRetries: 100,
      retryDelayMs: 50,
      maxHoldSecs: MAX_HOLD_SECS,
      operationTimeoutSecs: 15,
      operationAttemptTimeoutSecs: 5,
      maxAttempts: 2,
    });
    api = await startApi('', { kind: 'in-process' }, [], S3, locks);
    const location = String((await api.send('POST', '/v2/t/slow/blobs/uploads/')).headers.location);
    const chunks = Array.from({ length: 6 }, (_, i) => Buffer.from(`chunk ${i} `.repeat(100)));
    const size = chunks.reduce((sum, chunk) => sum + chunk.length, 0);

    // About 6 s of body, three times max_hold_secs: the lock must not be held while it streams.
    const patched = await sendSlowly(api, 'PATCH', location, chunks, 1000);
    expect(patched.status, patched.body).toBe(202);
    expect(patched.headers.range).toBe(`0-${size - 1}`);

    const whole = Buffer.concat([...chunks, ...chunks]);
    const put = await sendSlowly(api, 'PUT', `${location}?digest=${sha256(whole)}`, chunks, 1000);
    expect(put.status, put.body).toBe(201);
    const pulled = await api.send('GET', `/v2/t/slow/blobs/${sha256(whole)}`);
    expect(pulled.status).toBe(200);
    expect(pulled.body.equals(whole)).toBe(true);
  }, 90_000);
});
