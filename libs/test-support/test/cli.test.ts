import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkOci } from '../src/oci-layout.js';
import { freePortRange } from '../src/ports.js';
import { repoRoot } from '../src/repo-root.js';
import { run } from '../src/run.js';

const dist = (name: string) => join(repoRoot(), 'libs', 'test-support', 'dist', name);

// Each test starts node (and the last Ceph's checks): generous on a loaded machine.
describe('the command-line tools', { timeout: 60_000 }, () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'test-support-cli-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('angos-layout writes the layout mkOci writes, relative to where it was called, and prints its digest', async () => {
    const result = await run(
      process.execPath,
      [dist('layout-cli.js'), 'layout', 'v1', 'linux/amd64,linux/arm64', '--seed', 's', '--fill-mb', '1'],
      { env: { ...process.env, INIT_CWD: dir } },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const expected = await mkOci(join(dir, 'direct'), 'v1', ['linux/amd64', 'linux/arm64'], {
      seed: 's',
      fillMb: 1,
    });
    expect(result.stdout.trim()).toBe(expected);
  });

  it('angos-layout fails with its usage when arguments are missing', async () => {
    const result = await run(process.execPath, [dist('layout-cli.js'), 'only-a-dir']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('usage: angos-layout DIR TAG');
  });

  it('start-s3 exits 1 and prints nothing to evaluate when it cannot start', async () => {
    const port = await freePortRange(10);
    const blocker: Server = createServer();
    await new Promise<void>((resolveListen) => blocker.listen(port + 1, '127.0.0.1', resolveListen));
    try {
      const result = await run('bash', [join(repoRoot(), 'scripts', 'start-s3.sh'), String(port)], {
        env: { ...process.env, S3_DATA_DIR: join(dir, 'rgw') },
        timeoutMs: 60_000,
      });
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      // Without Ceph it says what to install; with Ceph, that the port is taken.
      expect(result.stderr).toMatch(/start-s3: .*(in use|apt-get install)/);
    } finally {
      blocker.close();
    }
  });
});
