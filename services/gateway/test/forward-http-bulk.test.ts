import { createHash, randomBytes } from 'node:crypto';
import { type IncomingMessage, request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { BulkReadAgent } from '../src/bulk-read-agent.js';
import { closedAfterEach, listenUpstream, startGateway } from './helpers.js';

/** Large transfers through the HTTP forwarder, whose upstream sockets share one read buffer. */

const track = closedAfterEach();

const TOKEN = 'internal-secret';
const MiB = 1024 * 1024;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** GETs `url` with node:http, resolving the response once its headers are in. */
function get(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, resolve);
    req.on('error', reject);
    req.end();
  });
}

async function digestOf(res: IncomingMessage): Promise<{ bytes: number; digest: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, digest: hash.digest('hex') };
}

describe('large transfers through the HTTP forwarder', () => {
  it('relays concurrent large bodies intact, with content-length or chunked, and reuses the connections', async () => {
    // Distinct bodies read at the same time: a read of one upstream socket must never show up in
    // another response (every upstream socket reads into the same buffer).
    const bodies = [randomBytes(6 * MiB), randomBytes(5 * MiB + 7), randomBytes(3 * MiB + 1)];
    const upstream = await track(
      listenUpstream((req, res) => {
        const index = Number(req.url?.split('/').pop()?.slice(-1));
        const body = bodies[index] ?? Buffer.from('small');
        // The second body without a length: Node frames it chunked.
        res.writeHead(200, index === 1 ? {} : { 'content-length': body.length });
        // Written in pieces, so each arrives over many reads.
        for (let offset = 0; offset < body.length; offset += 256 * 1024) {
          res.write(body.subarray(offset, offset + 256 * 1024));
        }
        res.end();
      }),
    );
    const gateway = await track(startGateway({ kind: 'http', url: upstream.url, internalToken: TOKEN }));

    for (let round = 0; round < 2; round++) {
      const results = await Promise.all(
        bodies.map(async (_body, index) => {
          const res = await get(`${gateway.url}/v2/app/blobs/sha256:${index}`);
          return {
            status: res.statusCode,
            chunked: res.headers['transfer-encoding'],
            ...(await digestOf(res)),
          };
        }),
      );
      expect(results).toEqual(
        bodies.map((body, index) => ({
          status: 200,
          chunked: index === 1 ? 'chunked' : undefined,
          bytes: body.length,
          digest: sha256(body),
        })),
      );
    }
    // A small answer on a connection that carried a large one: the parser starts clean.
    const small = await fetch(`${gateway.url}/v2/app/blobs/sha256:x`);
    expect(await small.text()).toBe('small');
  });

  it('passes a redirect through with its location, without following it', async () => {
    const upstream = await track(
      listenUpstream((_req, res) => {
        res.writeHead(307, { location: 'https://bucket.example/blob?sig=1', 'content-length': 0 });
        res.end();
      }),
    );
    const gateway = await track(startGateway({ kind: 'http', url: upstream.url, internalToken: TOKEN }));
    const res = await get(`${gateway.url}/v2/app/blobs/sha256:abc`);
    res.resume();
    expect(res.statusCode).toBe(307);
    expect(res.headers.location).toBe('https://bucket.example/blob?sig=1');
  });

  it('stops reading registry-api while the client does not read (backpressure)', async () => {
    const total = 512 * MiB;
    const piece = randomBytes(MiB);
    let produced = 0;
    let upstreamClosed = false;
    const upstream = await track(
      listenUpstream((req, res) => {
        res.writeHead(200, { 'content-length': total });
        req.socket.once('close', () => {
          upstreamClosed = true;
        });
        // Produces only as fast as the gateway takes it: what it has produced bounds what the
        // gateway (and the sockets between) can be holding.
        const pump = () => {
          while (produced < total && !res.destroyed) {
            produced += piece.length;
            if (!res.write(piece)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      }),
    );
    const gateway = await track(startGateway({ kind: 'http', url: upstream.url, internalToken: TOKEN }));
    const res = await get(`${gateway.url}/v2/app/blobs/sha256:abc`);
    await new Promise((resolve) => res.once('data', resolve));
    res.pause();

    // Wait until the upstream stops producing: the stall must come from the paused client, not
    // from the test giving up early. Generous bounds for a loaded machine.
    let last = -1;
    for (let stable = 0; stable < 4; ) {
      await new Promise((resolve) => setTimeout(resolve, 150));
      stable = produced === last ? stable + 1 : 0;
      last = produced;
    }
    // Socket buffers on three connections plus one read in the gateway: a few MiB; without
    // backpressure the gateway would have taken all 512 MiB into memory.
    expect(produced).toBeLessThan(64 * MiB);

    // The client going away releases the upstream request.
    res.destroy();
    const deadline = Date.now() + 5000;
    while (!upstreamClosed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(upstreamClosed).toBe(true);
  });

  it("reads registry-api in pieces larger than Node's 64 KiB", async () => {
    const body = randomBytes(4 * MiB);
    const upstream = await track(
      listenUpstream((_req, res) => {
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      }),
    );
    const agent = new BulkReadAgent({ keepAlive: true });
    try {
      // The largest piece depends on what the kernel has queued at each read; a few tries make a
      // piece over 64 KiB near certain on any machine, and Node's own reads never give one.
      let largest = 0;
      for (let attempt = 0; attempt < 5 && largest <= 64 * 1024; attempt++) {
        const res = await new Promise<IncomingMessage>((resolve, reject) => {
          const req = request(upstream.url, { agent }, resolve);
          req.on('error', reject);
          req.end();
        });
        const received: Buffer[] = [];
        for await (const chunk of res) {
          received.push(chunk as Buffer);
          largest = Math.max(largest, (chunk as Buffer).length);
        }
        expect(sha256(Buffer.concat(received))).toBe(sha256(body));
      }
      expect(largest).toBeGreaterThan(64 * 1024);
    } finally {
      agent.destroy();
    }
  });
});
