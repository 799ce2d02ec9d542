import { readFile } from 'node:fs/promises';

/** Resident set size of a process in bytes (VmRSS), 0 when it is gone. */
export async function rssOf(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export async function totalRss(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += await rssOf(pid);
  return total;
}

/** Samples the total RSS of `pids` every 100 ms until `stop`, which gives the peak in bytes. */
export function sampleRss(pids: readonly number[]): { stop(): Promise<number> } {
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await totalRss(pids));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    async stop() {
      sampling = false;
      await sampler;
      return peak;
    },
  };
}
