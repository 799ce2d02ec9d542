import { createHash, randomBytes } from 'node:crypto';
import { type IncomingMessage, request } from 'node:http';
import { CONTEXT_HEADER, createInternalVerifier, decodeContext, SIGNATURE_HEADER } from '@angos/http';
import { describe, expect, it } from 'vitest';
import { ALLOW_ALL, basic, closedAfterEach, IDENTITIES, listenUpstream, startGateway } from './helpers.js';

const track = closedAfterEach();

const TOKEN = 'internal-secret';

describe('buildGateway with an HTTP upstream', () => {
  it('streams the request to registry-api signed, with context and identity, and the response back', async () => {
    // registry-api's own check of the signature, against the same token.
    const verify = createInternalVerifier(TOKEN);
    const verifiedContext = (req: IncomingMessage) => {
      try {
        return verify(req);
      } catch (error) {
        return String(error);
      }
    };
    const upstream = await track(
      listenUpstream(async (req, res) => {
        const hash = createHash('sha256');
        let size = 0;
        for await (const chunk of req) {
          hash.update(chunk as Buffer);
          size += (chunk as Buffer).length;
        }
        res.writeHead(201, {
          location: '/v2/app/blobs/sha256:abc',
          'docker-content-digest': `sha256:${hash.digest('hex')}`,
          'x-seen': JSON.stringify({
            method: req.method,
            url: req.url,
            verified: verifiedContext(req),
            signature: req.headers[SIGNATURE_HEADER],
            token: req.headers['x-angos-internal-token'] ?? null,
            context: decodeContext(String(req.headers[CONTEXT_HEADER])),
            forged: req.headers['x-angos-forged'] ?? null,
            credentials: [req.headers.authorization, req.headers['proxy-authorization'], req.headers.cookie],
            size,
          }),
        });
        res.end('created');
      }),
    );
    const gateway = await track(
      startGateway({ kind: 'http', url: upstream.url, internalToken: TOKEN }, ALLOW_ALL + IDENTITIES),
    );

    const body = randomBytes(3 * 1024 * 1024);
    const response = await fetch(`${gateway.url}/v2/app/blobs/uploads/?mount=sha256:abc&from=base`, {
      method: 'POST',
      body,
      headers: {
        'x-angos-internal-token': 'forged',
        'x-angos-signature': 'forged',
        'x-angos-forged': 'yes',
        authorization: basic('alice'),
        'proxy-authorization': basic('admin'),
        cookie: 'session=secret',
      },
    });
    expect(response.status).toBe(201);
    expect(response.headers.get('location')).toBe('/v2/app/blobs/sha256:abc');
    expect(response.headers.get('docker-content-digest')).toBe(
      `sha256:${createHash('sha256').update(body).digest('hex')}`,
    );
    expect(await response.text()).toBe('created');
    const seen = JSON.parse(String(response.headers.get('x-seen')));
    expect(seen).toMatchObject({
      method: 'POST',
      url: '/v2/app/blobs/uploads/?mount=sha256:abc&from=base',
      signature: expect.stringMatching(/^t=\d+,n=[\w-]+,s=[0-9a-f]{64}$/),
      // The static token is no longer sent, and the client's credentials stay at the gateway.
      token: null,
      credentials: [null, null, null],
      forged: null,
      size: body.length,
      context: { mountAllowedFrom: ['base'], identity: { id: 'alice', username: 'alice' } },
      verified: { mountAllowedFrom: ['base'], identity: { id: 'alice', username: 'alice' } },
    });
    expect(seen.context.clientIp).toMatch(/127\.0\.0\.1/);
  });

  it("signs the target registry-api routes on, without registry_api_url's path prefix", async () => {
    const verify = createInternalVerifier(TOKEN);
    const upstream = await track(
      listenUpstream((req, res) => {
        // A proxy in front of registry-api strips the prefix it was sent with.
        const received = req.url ?? '';
        req.url = received.replace(/^\/internal/, '');
        try {
          verify(req);
          res.end(`verified ${received}`);
        } catch (error) {
          res.end(String(error));
        }
      }),
    );
    const gateway = await track(
      startGateway({ kind: 'http', url: `${upstream.url}/internal`, internalToken: TOKEN }),
    );
    const response = await fetch(`${gateway.url}/v2/app/tags/list?n=10`);
    expect(await response.text()).toBe('verified /internal/v2/app/tags/list?n=10');
  });

  it('streams a chunked request body of unknown length', async () => {
    const upstream = await track(
      listenUpstream(async (req, res) => {
        let size = 0;
        for await (const chunk of req) size += (chunk as Buffer).length;
        res.end(String(size));
      }),
    );
    const gateway = await track(startGateway({ kind: 'http', url: upstream.url, internalToken: TOKEN }));
    const chunks = [randomBytes(1000), randomBytes(70_000), randomBytes(5)];
    const stream = new ReadableStream({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(chunk);
        controller.close();
      },
    });
    const response = await fetch(`${gateway.url}/v2/app/blobs/uploads/123`, {
      method: 'PATCH',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(await response.text()).toBe('71005');
  });

  it('passes HEAD responses through without a body', async () => {
    const upstream = await track(
      listenUpstream((_req, res) => {
        res.writeHead(200, { 'content-length': '1234', 'content-type': 'application/octet-stream' });
        res.end();
      }),
    );
    const gateway = await track(startGateway({ kind: 'http', url: upstream.url, internalToken: TOKEN }));
    const response = await fetch(`${gateway.url}/v2/app/blobs/sha256:abc`, { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe('1234');
  });

  it('answers 502 quickly when registry-api is down', async () => {
    const upstream = await track(
      listenUpstream((_req, res) => {
        res.end();
      }),
    );
    const deadUrl = upstream.url;
    await upstream.close();
    const gateway = await track(startGateway({ kind: 'http', url: deadUrl, internalToken: TOKEN }));
    const started = Date.now();
    const response = await fetch(`${gateway.url}/v2/`, { signal: AbortSignal.timeout(5000) });
    expect(response.status).toBe(502);
    expect(((await response.json()) as { errors: { message: string }[] }).errors[0]?.message).toBe(
      'registry service unavailable',
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('aborts the upstream request when the client goes away', async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((resolve) => {
      upstreamClosed = resolve;
    });
    const upstream = await track(
      listenUpstream((req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write('first bytes');
        // Never ends: only the client's abort can release it.
        req.socket.on('close', () => upstreamClosed());
      }),
    );
    const gateway = await track(startGateway({ kind: 'http', url: upstream.url, internalToken: TOKEN }));
    await new Promise<void>((resolve, reject) => {
      const clientReq = request(`${gateway.url}/v2/app/blobs/sha256:abc`, (res) => {
        res.once('data', () => {
          clientReq.destroy();
          resolve();
        });
      });
      clientReq.on('error', () => {});
      clientReq.on('timeout', () => reject(new Error('no data')));
      clientReq.end();
    });
    await expect(
      Promise.race([
        closed,
        new Promise((_, reject) => setTimeout(() => reject(new Error('upstream kept open')), 3000)),
      ]),
    ).resolves.toBeUndefined();
  });

  it('truncates the client response when the upstream dies mid-body', async () => {
    const upstream = await track(
      listenUpstream((req, res) => {
        res.writeHead(200, { 'content-length': '1000' });
        res.write('only part of it');
        setTimeout(() => req.socket.destroy(), 50);
      }),
    );
    const gateway = await track(startGateway({ kind: 'http', url: upstream.url, internalToken: TOKEN }));
    const outcome = await new Promise<string>((resolve) => {
      const clientReq = request(`${gateway.url}/v2/app/blobs/sha256:abc`, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve('complete'));
        res.on('aborted', () => resolve('aborted'));
        res.on('error', () => resolve('aborted'));
      });
      clientReq.on('error', () => resolve('aborted'));
      clientReq.setTimeout(5000, () => resolve('hung'));
      clientReq.end();
    });
    expect(outcome).toBe('aborted');
  });

  it('relays an early upstream answer intact while the client is still sending', async () => {
    const upstream = await track(
      listenUpstream((_req, res) => {
        // Answers without reading the body, as registry-api does for an unknown upload session.
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}');
      }),
    );
    const gateway = await track(startGateway({ kind: 'http', url: upstream.url, internalToken: TOKEN }));
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const clientReq = request(`${gateway.url}/v2/app/blobs/uploads/123`, { method: 'PATCH' }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      clientReq.on('error', reject);
      let sent = 0;
      const pump = () => {
        while (sent < 8 * 1024 * 1024) {
          sent += 64 * 1024;
          if (!clientReq.write(randomBytes(64 * 1024))) return void clientReq.once('drain', pump);
        }
        clientReq.end();
      };
      pump();
    });
    expect(answer).toEqual({ status: 401, body: '{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}' });
  });

  it('still applies the policy before forwarding', async () => {
    let reached = false;
    const upstream = await track(
      listenUpstream((_req, res) => {
        reached = true;
        res.end();
      }),
    );
    const gateway = await track(
      startGateway(
        { kind: 'http', url: upstream.url, internalToken: TOKEN },
        '[global.access_policy]\ndefault = "deny"\n',
      ),
    );
    expect((await fetch(`${gateway.url}/v2/`)).status).toBe(401);
    expect(reached).toBe(false);
  });
});

describe('the jobs API through the gateway (split deployment)', () => {
  it('forwards each jobs endpoint the policy allows to registry-api, and refuses the others', async () => {
    const seen: string[] = [];
    const upstream = await track(
      listenUpstream((req, res) => {
        seen.push(`${req.method} ${req.url}`);
        res.writeHead(202, { 'content-length': 0 });
        res.end();
      }),
    );
    const policy = `${IDENTITIES}[global.access_policy]\ndefault = "deny"\nrules = [
      "identity.username == 'alice' && request.action in ['list-pending-jobs', 'list-failed-jobs']",
      "identity.username == 'admin'",
    ]\n`;
    const gateway = await track(
      startGateway({ kind: 'http', url: upstream.url, internalToken: TOKEN }, policy),
    );
    const id = '000000000-0000000000000000';
    const send = (method: string, path: string, user: 'alice' | 'admin') =>
      fetch(`${gateway.url}${path}`, { method, headers: { authorization: basic(user) } });

    expect((await send('GET', '/v2/_ext/jobs/pending?queue=cache&n=5', 'alice')).status).toBe(202);
    expect((await send('GET', '/v2/_ext/jobs/failed?queue=cache', 'alice')).status).toBe(202);
    expect((await send('POST', `/v2/_ext/jobs/failed/cache/${id}/retry`, 'alice')).status).toBe(403);
    expect((await send('DELETE', `/v2/_ext/jobs/pending/cache/${id}`, 'alice')).status).toBe(403);
    expect((await send('POST', `/v2/_ext/jobs/failed/cache/${id}/retry`, 'admin')).status).toBe(202);
    expect((await send('DELETE', `/v2/_ext/jobs/failed/cache/${id}`, 'admin')).status).toBe(202);
    const method = await send('POST', '/v2/_ext/jobs/pending?queue=cache', 'admin');
    expect(method.status).toBe(405);
    expect(method.headers.get('allow')).toBe('GET, HEAD');
    expect((await send('GET', '/v2/_ext/jobs', 'admin')).status).toBe(404);

    expect(seen).toEqual([
      'GET /v2/_ext/jobs/pending?queue=cache&n=5',
      'GET /v2/_ext/jobs/failed?queue=cache',
      `POST /v2/_ext/jobs/failed/cache/${id}/retry`,
      `DELETE /v2/_ext/jobs/failed/cache/${id}`,
    ]);
  });
});
