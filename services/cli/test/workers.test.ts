import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultWorkerCount, parseWorkers } from '../src/workers.js';
import { baseConfig, freePort, killAll, startAngos, useWorkspace, waitForRecord } from './helpers.js';

describe('--workers', () => {
  it.each([
    ['1', 1],
    ['16', 16],
    ['65535', 65535],
  ])('reads %s', (value, count) => {
    expect(parseWorkers(value)).toBe(count);
  });

  it.each([['0'], ['-1'], ['two'], ['1.5'], ['65536'], ['']])('refuses %j', (value) => {
    expect(() => parseWorkers(value)).toThrow(/^--workers: expected a whole number from 1 to 65535/);
  });
});

/**
 * A cgroup file system laid out in a temporary directory (files relative to its root) and the
 * /proc/self/cgroup that places the process in it: what the kernel shows, read the way it is read.
 */
async function countWith(membership: string, files: Record<string, string>, cpus = 64): Promise<number> {
  const root = await mkdtemp(join(tmpdir(), 'angos-cgroup-'));
  try {
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), text);
    }
    return defaultWorkerCount(cpus, { root, membership: () => membership });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

describe('the default worker count', () => {
  it('is the CPUs where no cgroup sets a quota', async () => {
    expect(await countWith('0::/\n', { 'cpu.max': 'max 100000\n' })).toBe(64);
    expect(await countWith('', {})).toBe(64);
    expect(
      await countWith('4:cpu,cpuacct:/\n', {
        'cpu/cpu.cfs_quota_us': '-1\n',
        'cpu/cpu.cfs_period_us': '100000\n',
      }),
    ).toBe(64);
  });

  it("is capped by a cgroup v2 quota, its own or an ancestor's, rounded up", async () => {
    const pod = 'kubepods.slice/pod1';
    expect(await countWith(`0::/${pod}/ctr\n`, { [`${pod}/ctr/cpu.max`]: '200000 100000\n' })).toBe(2);
    expect(
      await countWith(`0::/${pod}/ctr\n`, {
        [`${pod}/cpu.max`]: '150000 100000\n',
        [`${pod}/ctr/cpu.max`]: 'max 100000\n',
      }),
    ).toBe(2);
    expect(await countWith(`0::/${pod}/ctr\n`, { [`${pod}/ctr/cpu.max`]: '50000 100000\n' })).toBe(1);
    // Never above the CPUs the process may run on.
    expect(await countWith('0::/\n', { 'cpu.max': '800000 100000\n' }, 4)).toBe(4);
  });

  it('is capped by a cgroup v1 quota, also where the container sees its cgroup at the mount', async () => {
    const quota = { 'cpu/cpu.cfs_quota_us': '300000\n', 'cpu/cpu.cfs_period_us': '100000\n' };
    expect(await countWith('12:cpu,cpuacct:/docker/0123abcd\n1:name=systemd:/docker/0123abcd\n', quota)).toBe(
      3,
    );
    expect(
      await countWith('3:cpu:/batch\n', {
        'cpu/batch/cpu.cfs_quota_us': '250000\n',
        'cpu/batch/cpu.cfs_period_us': '100000\n',
      }),
    ).toBe(3);
  });
});

describe('worker count at startup', () => {
  const ws = useWorkspace();
  afterEach(() => killAll());

  const started = async (args: readonly string[]) => {
    const server = startAngos(['-c', ws().configPath, 'server', ...args]);
    const record = await waitForRecord(server, (line) => line['message'] === 'serving threads started');
    expect(await server.stop()).toBe(0);
    return record['workers'];
  };

  it('takes [server] workers, and --workers over it', async () => {
    const port = await freePort();
    await ws().writeConfig(
      baseConfig(ws().dir, port).replace(`port = ${port}`, `port = ${port}\nworkers = 3`),
    );
    expect(await started([])).toBe(3);
    expect(await started(['--workers', '2'])).toBe(2);
  }, 60_000);

  it.skipIf(defaultWorkerCount() < 2)(
    'runs a thread per CPU it may use where neither says',
    async () => {
      await ws().writeConfig(baseConfig(ws().dir, await freePort()));
      expect(await started([])).toBe(defaultWorkerCount());
    },
    60_000,
  );
});
