import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { CliError } from './errors.js';

const COUNT = /^[1-9][0-9]{0,4}$/;

/** `--workers <count>`: a whole number from 1 to 65535 (the range of `[server] workers`). */
export function parseWorkers(value: string): number {
  if (!COUNT.test(value) || Number(value) > 65535) {
    throw new CliError([`--workers: expected a whole number from 1 to 65535: ${JSON.stringify(value)}`]);
  }
  return Number(value);
}

/**
 * The serving threads a service runs when neither `[server] workers` nor `--workers` says: one per
 * CPU the process may use. `os.availableParallelism()` counts the CPUs it may run on (its affinity
 * mask) but not a container's CPU quota: a pod limited to 2 CPUs on a 64-core node would start 64
 * threads, each with its own heap, to share 2 CPUs of time. The quota, rounded up, caps the count.
 */
export function defaultWorkerCount(
  cpus: number = availableParallelism(),
  cgroups: CgroupFiles = SYSTEM_CGROUPS,
): number {
  const quota = cpuQuota(cgroups);
  return quota === undefined ? cpus : Math.max(1, Math.min(cpus, Math.ceil(quota)));
}

/** Where the cgroup hierarchy and this process's place in it are read from (a test points elsewhere). */
export interface CgroupFiles {
  /** The cgroup file system's mount point. */
  readonly root: string;
  /** The text of /proc/self/cgroup. */
  readonly membership: () => string | undefined;
}

const SYSTEM_CGROUPS: CgroupFiles = {
  root: '/sys/fs/cgroup',
  membership: () => readText('/proc/self/cgroup'),
};

/**
 * The CPUs of time per period this process's cgroup and its ancestors allow, the tightest of them;
 * undefined where none sets a quota (or there are no cgroups to read). cgroup v2 keeps it in
 * `cpu.max` ("max 100000" or "200000 100000"), v1 in the cpu controller's `cpu.cfs_quota_us` (-1
 * for none) and `cpu.cfs_period_us`.
 */
function cpuQuota(cgroups: CgroupFiles): number | undefined {
  const membership = cgroups.membership() ?? '';
  const lines = membership.split('\n').map((line) => line.split(':'));
  const unified = lines.find(([id, controllers]) => id === '0' && controllers === '');
  const v1 = lines.find(([, controllers]) => controllers?.split(',').includes('cpu'));
  if (v1 !== undefined) {
    // systemd and the container runtimes mount the controller at `cpu` (or link it to `cpu,cpuacct`).
    const quota = tightest(join(cgroups.root, 'cpu'), v1.slice(2).join(':'), (dir) => {
      const us = Number(readText(join(dir, 'cpu.cfs_quota_us')));
      const period = Number(readText(join(dir, 'cpu.cfs_period_us')));
      return us > 0 && period > 0 ? us / period : undefined;
    });
    if (quota !== undefined) return quota;
  }
  if (unified === undefined) return undefined;
  return tightest(cgroups.root, unified.slice(2).join(':'), (dir) => {
    const [max, period] = (readText(join(dir, 'cpu.max')) ?? '').trim().split(/\s+/);
    const quota = Number(max) / Number(period);
    return Number.isFinite(quota) && quota > 0 ? quota : undefined;
  });
}

/**
 * The smallest quota set on `path` or any cgroup above it, under `mount`. Inside a container the
 * path may name the host's hierarchy while the mount shows the container's own cgroup at its top:
 * the walk up ends there.
 */
function tightest(
  mount: string,
  path: string,
  quotaIn: (dir: string) => number | undefined,
): number | undefined {
  let least: number | undefined;
  const parts = path.split('/').filter((part) => part !== '' && part !== '..');
  for (let depth = parts.length; depth >= 0; depth--) {
    const quota = quotaIn(join(mount, ...parts.slice(0, depth)));
    if (quota !== undefined && (least === undefined || quota < least)) least = quota;
  }
  return least;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
