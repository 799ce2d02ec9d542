import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containersEnv } from '../src/containers-env.js';
import { skipWithout } from '../src/optional.js';
import { run } from '../src/run.js';

describe('containersEnv', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'test-support-containers-'));
    env = await containersEnv(dir, { insecureRegistries: ['127.0.0.1:5999'] });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('points every variable into the directory', () => {
    for (const name of [
      'CONTAINERS_REGISTRIES_CONF',
      'CONTAINERS_STORAGE_CONF',
      'CONTAINERS_CONF',
      'TMPDIR',
    ]) {
      expect(env[name]?.startsWith(dir)).toBe(true);
    }
    expect(env['BUILDAH_ISOLATION']).toBe('chroot');
    expect(env['PATH']).toBe(process.env['PATH']);
  });

  it('marks the registries insecure and starts with no credentials', async () => {
    const registries = await readFile(env['CONTAINERS_REGISTRIES_CONF']!, 'utf8');
    expect(registries).toContain('location = "127.0.0.1:5999"\ninsecure = true');
    expect(registries).toContain('location = "127.0.0.1"\ninsecure = true');
    expect(JSON.parse(await readFile(env['REGISTRY_AUTH_FILE']!, 'utf8'))).toEqual({ auths: {} });
  });

  it.skipIf(skipWithout('the podman storage check', 'podman'))(
    'is what podman uses for its storage',
    async () => {
      const result = await run(
        'podman',
        ['info', '--format', '{{.Store.GraphRoot}} {{.Store.GraphDriverName}}'],
        {
          env,
          timeoutMs: 60_000,
        },
      );
      expect(result.stderr).toBe('');
      expect(result.stdout.trim()).toBe(`${join(dir, 'graphroot')} vfs`);
    },
  );
});
