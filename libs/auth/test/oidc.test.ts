import { createHmac } from 'node:crypto';
import { configOf } from '@angos/test-support';
import { SignJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryCache } from '../src/cache/memory.js';
import { JwksSource } from '../src/oidc/jwks.js';
import { OidcProvider } from '../src/oidc/provider.js';
import { b64url, startIssuer, type TestIssuer } from './helpers.js';

let issuer: TestIssuer;
beforeEach(async () => {
  issuer = await startIssuer({ extraKeyAlgs: ['ES256'] });
});
afterEach(async () => {
  await issuer.close();
});

function providerFor(toml: string, options: { cooldownMs?: number; now?: () => number } = {}): OidcProvider {
  const config = configOf(`[auth.oidc.ci]\n${toml}`).auth.oidc['ci']!;
  const cache = new MemoryCache();
  const jwks = new JwksSource({
    issuer: config.issuer,
    jwksUri: config.jwks_uri,
    refreshSeconds: config.jwks_refresh_interval,
    cache: () => cache,
    cooldownMs: options.cooldownMs ?? 0,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  return new OidcProvider('ci', config, jwks, options.now);
}

const generic = () => `provider = "generic"\nissuer = "${issuer.issuer}"\njwks_uri = "${issuer.jwksUri}"\n`;

describe('OIDC token verification', () => {
  it('accepts a token signed by a published key, with its claims', async () => {
    const provider = providerFor(generic());
    const verdict = await provider.verify(
      await issuer.sign({ repository: 'org/app', ref: 'refs/heads/main' }),
    );
    expect(verdict).toMatchObject({
      valid: true,
      identity: { provider_name: 'ci', claims: { repository: 'org/app', iss: issuer.issuer } },
    });
  });

  it('discovers the JWKS URI from the issuer when jwks_uri is not set', async () => {
    const provider = providerFor(`provider = "generic"\nissuer = "${issuer.issuer}"\n`);
    expect((await provider.verify(await issuer.sign())).valid).toBe(true);
    expect(issuer.discoveryRequests).toBe(1);
    expect(issuer.jwksRequests).toBe(1);
  });

  it('fetches keys once per refresh interval, and again when it is over', async () => {
    let now = Date.now();
    const provider = providerFor(`${generic()}jwks_refresh_interval = 60\n`, { now: () => now });
    for (let i = 0; i < 5; i++) expect((await provider.verify(await issuer.sign())).valid).toBe(true);
    expect(issuer.jwksRequests).toBe(1);
    now += 61_000;
    // Real time does not move: give the token a lifetime covering the simulated clock.
    expect(await provider.verify(await issuer.sign({}, { expiresIn: 3600 }))).toMatchObject({ valid: true });
    expect(issuer.jwksRequests).toBe(2);
  });

  it('follows key rotation: a token with a new key id fetches the keys again', async () => {
    const provider = providerFor(generic());
    expect((await provider.verify(await issuer.sign())).valid).toBe(true);
    await issuer.rotate();
    expect((await provider.verify(await issuer.sign())).valid).toBe(true);
    expect(issuer.jwksRequests).toBe(2);
  });

  it('does not let unknown key ids trigger a fetch per token (cooldown)', async () => {
    let now = Date.now();
    const provider = providerFor(generic(), { cooldownMs: 30_000, now: () => now });
    expect((await provider.verify(await issuer.sign())).valid).toBe(true);
    const stranger = await issuer.stranger();
    for (let i = 0; i < 5; i++) {
      expect(await provider.verify(await issuer.sign({}, { key: stranger }))).toEqual({
        valid: false,
        reason: 'no matching signing key',
      });
    }
    expect(issuer.jwksRequests).toBe(1);
    // Past the cooldown one unknown key id may fetch again, once.
    now += 31_000;
    for (let i = 0; i < 3; i++)
      expect((await provider.verify(await issuer.sign({}, { key: stranger }))).valid).toBe(false);
    expect(issuer.jwksRequests).toBe(2);
  });

  it.each([
    ['an expired token', { expiresIn: -120 }, 'token expired'],
    ['a token not valid yet', { notBefore: 600 }, 'claim nbf check failed'],
  ])('rejects %s', async (_name, options, reason) => {
    const provider = providerFor(generic());
    expect(await provider.verify(await issuer.sign({}, options))).toEqual({ valid: false, reason });
  });

  it('tolerates clock skew up to clock_skew_tolerance', async () => {
    const provider = providerFor(`${generic()}clock_skew_tolerance = 60\n`);
    expect((await provider.verify(await issuer.sign({}, { expiresIn: -30 }))).valid).toBe(true);
    expect((await provider.verify(await issuer.sign({}, { notBefore: 30 }))).valid).toBe(true);
    expect((await provider.verify(await issuer.sign({}, { expiresIn: -90 }))).valid).toBe(false);
    const strict = providerFor(`${generic()}clock_skew_tolerance = 0\n`);
    expect((await strict.verify(await issuer.sign({}, { expiresIn: -2 }))).valid).toBe(false);
  });

  it('checks the audience when required_audience is set', async () => {
    const provider = providerFor(`${generic()}required_audience = "angos"\n`);
    expect((await provider.verify(await issuer.sign({ aud: 'angos' }))).valid).toBe(true);
    expect((await provider.verify(await issuer.sign({ aud: ['other', 'angos'] }))).valid).toBe(true);
    expect(await provider.verify(await issuer.sign({ aud: 'other' }))).toEqual({
      valid: false,
      reason: 'claim aud check failed',
    });
    expect((await provider.verify(await issuer.sign())).valid).toBe(false);
  });

  it('checks the issuer', async () => {
    const provider = providerFor(generic());
    expect(await provider.verify(await issuer.sign({ iss: 'https://evil.example' }))).toEqual({
      valid: false,
      reason: 'claim iss check failed',
    });
  });

  it('rejects a token without exp', async () => {
    const provider = providerFor(generic());
    const key = issuer.current();
    const token = await new SignJWT({ iss: issuer.issuer, sub: 'x' })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid })
      .sign(key.privateKey);
    expect(await provider.verify(token)).toEqual({ valid: false, reason: 'claim exp missing' });
  });

  describe('algorithm confusion', () => {
    it('rejects alg "none" before looking at keys', async () => {
      const provider = providerFor(generic());
      const claims = { iss: issuer.issuer, sub: 'x', exp: Math.floor(Date.now() / 1000) + 600 };
      const token = `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}.`;
      expect(await provider.verify(token)).toEqual({
        valid: false,
        reason: 'algorithm "none" is not in allowed_algorithms',
      });
      expect(issuer.jwksRequests).toBe(0);
    });

    it('rejects HS256 signed with the public key as the HMAC secret', async () => {
      const provider = providerFor(generic());
      const key = issuer.current();
      const header = b64url(JSON.stringify({ alg: 'HS256', kid: key.kid, typ: 'JWT' }));
      const claims = b64url(
        JSON.stringify({ iss: issuer.issuer, sub: 'x', exp: Math.floor(Date.now() / 1000) + 600 }),
      );
      const secret = JSON.stringify(key.publicJwk);
      const signature = createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url');
      expect(await provider.verify(`${header}.${claims}.${signature}`)).toEqual({
        valid: false,
        reason: 'algorithm "HS256" is not in allowed_algorithms',
      });
      expect(issuer.jwksRequests).toBe(0);
    });

    it('rejects a published algorithm that is not allowed, and accepts it once allowed', async () => {
      // The issuer publishes an ES256 key too; the default allowlist is RS256 only.
      const token = await issuer.sign({}, { key: issuer.published('ES256') });
      const provider = providerFor(generic());
      expect(await provider.verify(token)).toEqual({
        valid: false,
        reason: 'algorithm "ES256" is not in allowed_algorithms',
      });
      const allowing = providerFor(`${generic()}allowed_algorithms = ["RS256", "ES256"]\n`);
      expect((await allowing.verify(token)).valid).toBe(true);
    });

    it('rejects a token whose header algorithm does not match the key', async () => {
      const provider = providerFor(`${generic()}allowed_algorithms = ["RS256", "PS256"]\n`);
      // Signed RS256 but labelled PS256: the signature check fails.
      const token = await issuer.sign();
      const [, payload, signature] = token.split('.');
      const key = issuer.current();
      const relabelled = `${b64url(JSON.stringify({ alg: 'PS256', kid: key.kid }))}.${payload}.${signature}`;
      expect((await provider.verify(relabelled)).valid).toBe(false);
    });
  });

  it('rejects malformed tokens without fetching keys', async () => {
    const provider = providerFor(generic());
    for (const token of ['', 'abc', 'a.b.c', `${b64url('{}')}.${b64url('{}')}.`]) {
      expect((await provider.verify(token)).valid).toBe(false);
    }
    expect(issuer.jwksRequests).toBe(0);
  });

  it('refuses a token with characters outside base64url, which a lenient decoder would skip', async () => {
    // Found by the authentication fuzz run: junk inserted into the signature segment of a valid
    // token decoded to the same signature, so the altered token was accepted.
    const provider = providerFor(generic());
    const token = await issuer.sign();
    expect((await provider.verify(token)).valid).toBe(true);
    const at = token.length - 20;
    for (const junk of ['=', '%', ' ', '\t', '+', '/', '*']) {
      const altered = `${token.slice(0, at)}${junk}${token.slice(at)}`;
      expect(await provider.verify(altered), JSON.stringify(junk)).toEqual({
        valid: false,
        reason: 'malformed token',
      });
    }
    expect((await provider.verify(`${token}=`)).valid).toBe(false);
  });

  it('fails closed while the JWKS cannot be fetched, and recovers', async () => {
    const provider = providerFor(generic());
    issuer.failWith = 503;
    const verdict = await provider.verify(await issuer.sign());
    expect(verdict.valid).toBe(false);
    expect((verdict as { reason: string }).reason).toMatch(/signing keys unavailable: .* answered 503/);
    issuer.failWith = undefined;
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await provider.verify(await issuer.sign())).valid).toBe(true);
  });

  it('refuses a discovery document naming another issuer', async () => {
    const provider = providerFor(`provider = "generic"\nissuer = "${issuer.issuer}/tenant"\n`);
    const verdict = await provider.verify(await issuer.sign({ iss: `${issuer.issuer}/tenant` }));
    expect(verdict.valid).toBe(false);
  });

  it('uses the GitHub defaults for issuer and JWKS URI', () => {
    const config = configOf('[auth.oidc.gh]\nprovider = "github"\n').auth.oidc['gh']!;
    expect(config.issuer).toBe('https://token.actions.githubusercontent.com');
    expect(config.jwks_uri).toBe('https://token.actions.githubusercontent.com/.well-known/jwks');
  });
});
