import { DISTRIBUTION_USER, type Distribution, skipWithout, startDistribution } from '@angos/test-support';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isUpstreamError, type UpstreamClient } from '../src/index.js';
import { clientFor, readAll, type SeededImage, seedImage } from './helpers.js';

const skip = skipWithout('upstream auth tests against CNCF distribution', 'docker-registry', 'openssl');

const CREDENTIALS = { username: DISTRIBUTION_USER.username, password: DISTRIBUTION_USER.password };

describe.skipIf(skip)('Basic auth (distribution with htpasswd)', () => {
  let upstream: Distribution;
  let image: SeededImage;

  beforeAll(async () => {
    upstream = await startDistribution({ auth: 'htpasswd' });
    image = await seedImage(upstream, 'app', 'v1');
  });

  afterAll(async () => {
    await upstream?.stop();
    await image?.remove();
  });

  it('without credentials: unauthorized, terminal', async () => {
    const client = clientFor(upstream.url);
    try {
      const error = await client.getManifest('mirror/app', 'v1').catch((e: unknown) => e);
      expect(isUpstreamError(error, 'unauthorized')).toBe(true);
      expect((error as { transient: boolean }).transient).toBe(false);
    } finally {
      client.close();
    }
  });

  it('with a wrong password: unauthorized', async () => {
    const client = clientFor(upstream.url, { username: DISTRIBUTION_USER.username, password: 'wrong' });
    try {
      await expect(client.headManifest('mirror/app', 'v1')).rejects.toSatisfy((e) =>
        isUpstreamError(e, 'unauthorized'),
      );
    } finally {
      client.close();
    }
  });
});

describe.skipIf(skip)('Bearer token flow (distribution with token auth and a test token issuer)', () => {
  let upstream: Distribution;
  let image: SeededImage;
  let other: SeededImage;
  const clients: UpstreamClient[] = [];
  const client = (credentials = true) => {
    const made = clientFor(upstream.url, credentials ? CREDENTIALS : {});
    clients.push(made);
    return made;
  };
  const issuer = () => upstream.issuer!;

  beforeAll(async () => {
    upstream = await startDistribution({ auth: 'token' });
    image = await seedImage(upstream, 'team/app', 'v1');
    other = await seedImage(upstream, 'team/other', 'v1');
  });

  afterEach(() => {
    for (const made of clients.splice(0)) made.close();
    Object.assign(issuer().settings, { lifetimeSeconds: 300, grant: 'requested', requireCredentials: false });
  });

  afterAll(async () => {
    await upstream?.stop();
    await image?.remove();
    await other?.remove();
  });

  /** Token requests made by `run`. */
  async function tokenRequests(run: () => Promise<void>) {
    const before = issuer().requests.length;
    await run();
    return issuer().requests.slice(before);
  }

  it('asks for one token per scope, with the credentials as Basic, and reuses it until it expires', async () => {
    const pulling = client();
    const requests = await tokenRequests(async () => {
      await pulling.headManifest('mirror/team/app', 'v1');
      await pulling.getManifest('mirror/team/app', 'v1');
      for (const digest of image.blobs)
        await readAll((await pulling.getBlob('mirror/team/app', digest)).body);
      expect(await pulling.listTags('mirror/team/app')).toEqual(['v1']);
    });
    expect(requests).toEqual([
      { service: issuer().service, scopes: ['repository:team/app:pull'], username: 'angos', status: 200 },
    ]);

    // Another repository is another scope, hence another token; the first is still cached.
    const second = await tokenRequests(async () => {
      await pulling.getManifest('mirror/team/other', 'v1');
      await pulling.getManifest('mirror/team/app', 'v1');
    });
    expect(second.map((r) => r.scopes)).toEqual([['repository:team/other:pull']]);
  });

  it('concurrent requests of one scope share a single token request', async () => {
    const pulling = client();
    const requests = await tokenRequests(async () => {
      await Promise.all(
        image.blobs.flatMap((digest) => [1, 2, 3].map(() => pulling.headBlob('mirror/team/app', digest))),
      );
    });
    // The first wave goes anonymous and is challenged; every retry waits for the same token.
    expect(requests).toHaveLength(1);
  });

  it('asks anonymously without credentials', async () => {
    const pulling = client(false);
    const requests = await tokenRequests(async () => {
      await pulling.getManifest('mirror/team/app', 'v1');
    });
    expect(requests).toEqual([
      { service: issuer().service, scopes: ['repository:team/app:pull'], username: undefined, status: 200 },
    ]);
  });

  it('a token endpoint that refuses is unauthorized', async () => {
    issuer().settings.requireCredentials = true;
    await expect(client(false).getManifest('mirror/team/app', 'v1')).rejects.toSatisfy(
      (e) => isUpstreamError(e, 'unauthorized') && /token endpoint answered 401/.test((e as Error).message),
    );
  });

  it('a token lifetime under the slack is fetched again for each request; expires_in is honoured', async () => {
    let now = 1_000_000;
    const pulling = clientFor(upstream.url, CREDENTIALS, { now: () => now });
    clients.push(pulling);
    issuer().settings.lifetimeSeconds = 60;
    const requests = await tokenRequests(async () => {
      await pulling.headManifest('mirror/team/app', 'v1');
      now += 47_000; // a 60 s token is used for 48 s
      await pulling.headManifest('mirror/team/app', 'v1');
      now += 2_000;
      await pulling.headManifest('mirror/team/app', 'v1');
    });
    expect(requests).toHaveLength(2);
  });

  it('a token the registry rejects is replaced by a fresh one, once per request', async () => {
    const pulling = client();
    // A token without access: the registry answers 401 to it, and the single retry ends there.
    issuer().settings.grant = 'nothing';
    const refused = await tokenRequests(async () => {
      await expect(pulling.getManifest('mirror/team/app', 'v1')).rejects.toSatisfy((e) =>
        isUpstreamError(e, 'unauthorized'),
      );
    });
    expect(refused).toHaveLength(1);

    // The useless token is still cached: sent first, refused, dropped, and a fresh one works.
    issuer().settings.grant = 'requested';
    const renewed = await tokenRequests(async () => {
      expect((await pulling.getManifest('mirror/team/app', 'v1')).digest).toBe(image.digest);
    });
    expect(renewed).toHaveLength(1);
    const after = await tokenRequests(async () => {
      await pulling.getManifest('mirror/team/app', 'v1');
    });
    expect(after).toHaveLength(0);
  });
});
