import { readFile } from 'node:fs/promises';

/** Clock ticks per second of /proc's CPU times (USER_HZ): 100 on every Linux architecture in use. */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system, every thread) a process has used, 0 when it is gone. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from the last `)`.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

export async function totalCpuSeconds(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += await cpuSecondsOf(pid);
  return total;
}

/**
 * How many cores `pids` kept busy while `work` ran: their CPU seconds over the wall-clock
 * seconds. One Node process stays near 1; a server that spreads its load reaches the core count.
 */
export async function coresUsedBy<T>(
  pids: readonly number[],
  work: () => Promise<T>,
): Promise<{ result: T; cores: number }> {
  const cpuBefore = await totalCpuSeconds(pids);
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const cpu = (await totalCpuSeconds(pids)) - cpuBefore;
  return { result, cores: seconds > 0 ? cpu / seconds : 0 };
}

/**
 * CPU seconds of this process's children that have ended and been waited for, theirs included:
 * the load generators a benchmark ran (wrk, the curl processes under bash and xargs).
 */
async function endedChildrenCpuSeconds(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // cutime and cstime are fields 16 and 17 of the line, 14 and 15 after the name.
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
}

/**
 * How many cores the load generators `work` ran (and waited for) kept busy. Pinned to one core,
 * near 1 says the generator, not the server, set the pace.
 */
export async function generatorCoresDuring<T>(work: () => Promise<T>): Promise<{ result: T; cores: number }> {
  const before = await endedChildrenCpuSeconds();
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const cpu = (await endedChildrenCpuSeconds()) - before;
  return { result, cores: seconds > 0 ? cpu / seconds : 0 };
}

/** Busy and total clock ticks of every core together, from the first line of /proc/stat. */
async function machineTicks(): Promise<{ busy: number; total: number }> {
  const stat = await readFile('/proc/stat', 'utf8');
  // cpu  user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
  const ticks = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1, 9).map(Number);
  const total = ticks.reduce((sum, value) => sum + value, 0);
  return { busy: total - ticks[3]! - ticks[4]!, total };
}

/**
 * How many cores of the whole machine were busy while `work` ran, whoever used them (subject,
 * load generator, the kernel's network and page-cache work). Near the core count, the machine
 * itself is the floor: no number of serving threads could go faster.
 */
export async function machineCoresDuring<T>(work: () => Promise<T>): Promise<{ result: T; cores: number }> {
  const before = await machineTicks();
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const after = await machineTicks();
  return { result, cores: seconds > 0 ? (after.busy - before.busy) / TICKS_PER_SECOND / seconds : 0 };
}
