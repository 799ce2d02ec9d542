import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mkOci, OciLayout, pushLayout } from '@angos/test-support';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployments, skipWithoutClients, useRegistry } from './fixture.js';

/** What `cosign verify` prints for each verified signature (the simple signing payload). */
interface SimpleSigning {
  critical: { identity: { 'docker-reference': string }; image: { 'docker-manifest-digest': string } };
  optional?: Record<string, string>;
}

const PREDICATE_TYPE = 'https://example.com/angos/e2e-predicate/v1';

/**
 * cosign with a key pair it generates itself, offline: no transparency log upload or check
 * (`--tlog-upload=false`, `--insecure-ignore-tlog`), a plain-HTTP registry
 * (`--allow-http-registry`, `--allow-insecure-registry`). Signatures and attestations go where
 * cosign 2 puts them by default, `sha256-<hex>.sig` / `.att` tags in the image's repository, or
 * with the (experimental) OCI 1.1 mode, to the referrers API.
 */
describe.skipIf(skipWithoutClients('cosign')).each(deployments())(
  'cosign against angos $label',
  (deployment) => {
    const r = useRegistry(deployment, ['cosign']);
    const registryFlags = ['--allow-http-registry', '--allow-insecure-registry'];
    let keys = '';
    let otherKeys = '';
    const cosign = (...args: string[]) => r.ok('cosign', ...args);

    /** A key pair in a new directory, protected by COSIGN_PASSWORD (the suite's environment). */
    async function keyPair(): Promise<string> {
      const dir = r.path('keys');
      await mkdir(dir);
      await r.okIn(dir, 'cosign', 'generate-key-pair');
      return dir;
    }

    beforeAll(async () => {
      // r.env is the environment every client of this suite runs with.
      Object.assign(r.env, {
        COSIGN_PASSWORD: 'e2e-key-password',
        // There is no internet: cosign's attempt to refresh Sigstore's TUF root (it makes one even
        // with --key and no tlog) fails at once on a proxy that refuses, instead of waiting on DNS
        // or a dropped connection. Loopback requests (the registry, RGW) never go through a proxy.
        HTTPS_PROXY: 'http://127.0.0.1:9',
        NO_PROXY: '127.0.0.1,localhost',
      });
      keys = await keyPair();
      otherKeys = await keyPair();
    });

    /** A fresh image in `repo`, tagged v1; returns its digest. */
    async function pushImage(repo: string): Promise<string> {
      const src = new OciLayout(r.path('src'));
      // fillMb: the seed changes the content only with fill data; each image must be a new one.
      const digest = await mkOci(src.dir, 'v1', ['linux/amd64'], { seed: r.seed(), fillMb: 1 });
      await pushLayout(r.client, src, repo, digest, 'v1');
      return digest;
    }

    const verify = (keyDir: string, image: string) =>
      r.attempt(
        'cosign',
        'verify',
        '--key',
        join(keyDir, 'cosign.pub'),
        '--insecure-ignore-tlog=true',
        ...registryFlags,
        image,
      );

    it('signs an image with a generated key and verifies it', async () => {
      const digest = await pushImage('t/signed');
      const image = r.image('t/signed', digest);
      await cosign(
        'sign',
        '--key',
        join(keys, 'cosign.key'),
        '--tlog-upload=false',
        ...registryFlags,
        '--annotations',
        'org.example.signed-by=e2e',
        '--yes',
        image,
      );

      // The signature lives under the tag cosign derives from the image digest.
      const { tags } = await r.client.tags('t/signed');
      expect(tags.sort()).toEqual([`${digest.replace(':', '-')}.sig`, 'v1']);

      const verified = await verify(keys, image);
      expect(verified.code, verified.stderr).toBe(0);
      const payloads = JSON.parse(verified.stdout) as SimpleSigning[];
      expect(payloads).toHaveLength(1);
      expect(payloads[0]!.critical.image['docker-manifest-digest']).toBe(digest);
      expect(payloads[0]!.optional).toMatchObject({ 'org.example.signed-by': 'e2e' });
      // By tag too: cosign resolves v1 to the same digest.
      expect((await verify(keys, r.image('t/signed', 'v1'))).code).toBe(0);

      // Another key does not verify it, and an unsigned image has no signature at all.
      const wrongKey = await verify(otherKeys, image);
      expect(wrongKey.code).not.toBe(0);
      expect(wrongKey.stderr).toMatch(/no matching signatures|invalid signature/i);
      const unsigned = await verify(keys, r.image('t/signed', await pushImage('t/signed')));
      expect(unsigned.code).not.toBe(0);
      expect(unsigned.stderr).toMatch(/no signatures found|no matching signatures/i);
    });

    it('signs through the referrers API (OCI 1.1 mode) and verifies from there', async () => {
      const digest = await pushImage('t/referred');
      const image = r.image('t/referred', digest);
      // The referrers mode is experimental in cosign 2: COSIGN_EXPERIMENTAL turns it on.
      const experimental = (...args: string[]) => r.ok('env', 'COSIGN_EXPERIMENTAL=1', 'cosign', ...args);
      await experimental(
        'sign',
        '--registry-referrers-mode=oci-1-1',
        '--key',
        join(keys, 'cosign.key'),
        '--tlog-upload=false',
        ...registryFlags,
        '--yes',
        image,
      );
      // No tag this time: the signature is a referrer of the image, typed by its config media type.
      expect((await r.client.tags('t/referred')).tags).toEqual(['v1']);
      const referrers = await r.client.referrers('t/referred', digest);
      expect(referrers).toMatchObject({
        status: 200,
        body: { manifests: [{ artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' }] },
      });

      const verified = await experimental(
        'verify',
        '--experimental-oci11',
        '--key',
        join(keys, 'cosign.pub'),
        '--insecure-ignore-tlog=true',
        ...registryFlags,
        image,
      );
      const payloads = JSON.parse(verified.stdout) as SimpleSigning[];
      expect(payloads.map((p) => p.critical.image['docker-manifest-digest'])).toEqual([digest]);
    });

    it('attests a predicate and verifies the attestation', async () => {
      const digest = await pushImage('t/attested');
      const image = r.image('t/attested', digest);
      const predicate = r.path('predicate.json');
      const build = { builder: 'angos-e2e', seed: r.seed() };
      await writeFile(predicate, JSON.stringify(build));
      await cosign(
        'attest',
        '--key',
        join(keys, 'cosign.key'),
        '--tlog-upload=false',
        ...registryFlags,
        '--type',
        PREDICATE_TYPE,
        '--predicate',
        predicate,
        '--yes',
        image,
      );
      const { tags } = await r.client.tags('t/attested');
      expect(tags.sort()).toEqual([`${digest.replace(':', '-')}.att`, 'v1']);

      const verified = await cosign(
        'verify-attestation',
        '--key',
        join(keys, 'cosign.pub'),
        '--insecure-ignore-tlog=true',
        ...registryFlags,
        '--type',
        PREDICATE_TYPE,
        image,
      );
      // One DSSE envelope per line; its payload is the in-toto statement about this image.
      const envelopes = verified.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(envelopes).toHaveLength(1);
      const statement = JSON.parse(Buffer.from(envelopes[0].payload, 'base64').toString('utf8'));
      expect(statement).toMatchObject({
        predicateType: PREDICATE_TYPE,
        subject: [{ digest: { sha256: digest.slice('sha256:'.length) } }],
        predicate: build,
      });

      const wrongKey = await r.attempt(
        'cosign',
        'verify-attestation',
        '--key',
        join(otherKeys, 'cosign.pub'),
        '--insecure-ignore-tlog=true',
        ...registryFlags,
        '--type',
        PREDICATE_TYPE,
        image,
      );
      expect(wrongKey.code).not.toBe(0);
    });
  },
);
