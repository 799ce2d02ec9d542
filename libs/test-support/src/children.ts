import type { ChildProcess } from 'node:child_process';

/**
 * Every process the test helpers spawn is tracked here until it exits, and killed when the test
 * process exits, so a failing or interrupted test never leaves a registry or client behind.
 */
const live = new Set<ChildProcess>();
let hooked = false;

function killAll(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  live.clear();
}

export function track(child: ChildProcess): void {
  if (!hooked) {
    hooked = true;
    process.once('exit', killAll);
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Resolves once the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveExit) => child.once('exit', () => resolveExit()));
}

/** SIGTERM, then SIGKILL if the child is still running after `graceMs`. */
export async function terminate(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const escalate = new Promise<void>((resolveKill) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolveKill();
    }, graceMs);
  });
  await Promise.race([exited(child), escalate]);
  clearTimeout(timer);
  await exited(child);
}
