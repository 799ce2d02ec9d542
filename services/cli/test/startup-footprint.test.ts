import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { moduleTracePreload, OciClient, startAngos } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * What a backend or feature brings (the AWS SDK and ioredis ~20 MiB of RSS each, argon2 ~11,
 * jose ~7, cel-js ~6) loads only when the configuration uses it: `angos server` on fs with no
 * authentication, serving a push and a pull, must load none of them.
 */
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const OPTIONAL_PACKAGES = [
  '@aws-sdk/',
  '@smithy/',
  'ioredis',
  '@node-rs/argon2',
  'jose',
  '@marcbachmann/cel-js',
];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'angos-footprint-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('angos server startup footprint', () => {
  it('loads no S3, Redis or authentication code for an fs registry without authentication', async () => {
    const trace = join(dir, 'modules');
    const angos = await startAngos({
      mode: 'server',
      env: { NODE_OPTIONS: `--import ${moduleTracePreload()}`, ANGOS_LOAD_TRACE: trace },
    });
    try {
      const client = new OciClient(angos.url);
      const config = Buffer.from('{}');
      const layer = Buffer.alloc(4096, 1);
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: await client.pushBlob('footprint/app', config),
          size: config.length,
        },
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.v1.tar',
            digest: await client.pushBlob('footprint/app', layer),
            size: layer.length,
          },
        ],
      });
      const pushed = await client.pushManifest('footprint/app', 'v1', manifest, OCI_MANIFEST);
      expect(pushed.status).toBe(201);
      expect((await client.getManifest('footprint/app', 'v1')).digest).toBe(pushed.digest);
    } finally {
      await angos.stop();
    }
    const loaded = (await readFile(trace, 'utf8')).split('\n');
    expect(loaded.some((line) => line.includes('/services/cli/dist/'))).toBe(true); // the trace works
    const unexpected = OPTIONAL_PACKAGES.filter((name) =>
      loaded.some((line) => line.startsWith(name) || line.includes(`/node_modules/${name}`)),
    );
    expect(unexpected).toEqual([]);
  });
});
