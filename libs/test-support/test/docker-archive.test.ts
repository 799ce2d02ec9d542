import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeDockerArchive } from '../src/docker-archive.js';
import { mkOci, OciLayout } from '../src/oci-layout.js';
import { runOk } from '../src/run.js';

describe('writeDockerArchive', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'test-support-docker-archive-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the same docker-save archive of a layout image each time: manifest.json and its blobs', async () => {
    const layout = new OciLayout(join(dir, 'layout'));
    const digest = await mkOci(layout.dir, 'v1', ['linux/arm64']);
    const manifest = await layout.json<{ config: { digest: string }; layers: { digest: string }[] }>(digest);
    const [first, second] = [join(dir, 'a.tar'), join(dir, 'b.tar')];
    await writeDockerArchive(layout, digest, 'example/app:v1', first);
    await writeDockerArchive(layout, digest, 'example/app:v1', second);
    expect((await readFile(first)).equals(await readFile(second))).toBe(true);

    const path = (d: string) => `blobs/sha256/${d.slice('sha256:'.length)}`;
    const listing = (await runOk('tar', ['-tf', first])).stdout.trim().split('\n');
    expect(listing.sort()).toEqual(
      ['manifest.json', path(manifest.config.digest), ...manifest.layers.map((l) => path(l.digest))].sort(),
    );
    const entries = JSON.parse((await runOk('tar', ['-xOf', first, 'manifest.json'])).stdout);
    expect(entries).toEqual([
      {
        Config: path(manifest.config.digest),
        RepoTags: ['example/app:v1'],
        Layers: manifest.layers.map((l) => path(l.digest)),
      },
    ]);
  });
});
