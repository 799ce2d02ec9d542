import { skipWithout } from '@angos/test-support';
import { describe, expect, inject, it } from 'vitest';
import { type ScrubSoakReport, type ScrubSoakSetup, soakScrub } from '../src/index.js';

/**
 * The short form of `pnpm soak-scrub`: 10 s (25 s on S3, whose scrub runs are slower) of pushes
 * (layers shared across images and namespaces), pulls of every acknowledged tag, retention keeping
 * the 3 most recently pushed tags of each namespace, and `angos scrub -t -m -b -r -l` in a loop
 * beside the servers. 10 s on fs makes about 50 pushes and 6 scrub runs on the CI machine. On S3
 * pushes are paced at 2 a second: at the fs pace each scrub run has hundreds of retention deletes
 * to make on RGW and the loop runs only two or three times. By the end of the load the run must have
 * made 10 pushes and 3 scrub runs (the two final runs come after), and one that has not goes on
 * for up to as long again (a loaded machine is slower).
 */
const AT_LEAST = { pushes: 10, scrubRuns: 3 };
const seconds = (setup: ScrubSoakSetup): number => (setup === 's3' ? 25 : 10);
const pushesPerSecond = (setup: ScrubSoakSetup): number => (setup === 's3' ? 2 : 5);
const s3 = inject('s3');

async function shortForm(setup: ScrubSoakSetup): Promise<ScrubSoakReport> {
  const report = await soakScrub({
    setup,
    seconds: seconds(setup),
    pushesPerSecond: pushesPerSecond(setup),
    atLeast: AT_LEAST,
    seed: 20261204,
    // Two namespaces: retention has tags to delete within the run even where pushes are slow (S3).
    namespaces: 2,
    s3: s3 ?? undefined,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const { brokenPulls, serverErrors, scrubFailures, ...figures } = report;
  process.stderr.write(
    `${setup}: ${JSON.stringify({ ...figures, brokenPulls: brokenPulls.length, serverErrors: serverErrors.length, scrubFailures: scrubFailures.length })}\n`,
  );
  return report;
}

function expectHealthy(report: ScrubSoakReport): void {
  expect(report.brokenPulls).toEqual([]);
  expect(report.serverErrors).toEqual([]);
  expect(report.scrubFailures).toEqual([]);
  expect(report.deadReplicas).toEqual([]);
  // The run really raced everything: pushes, retention deletes seen by pulls, several scrub runs.
  expect(report.pushes).toBeGreaterThanOrEqual(AT_LEAST.pushes);
  expect(report.pulls).toBeGreaterThan(report.pushes);
  expect(report.retentionDeletes).toBeGreaterThan(0);
  expect(report.scrubRuns).toBeGreaterThanOrEqual(AT_LEAST.scrubRuns + 2);
  expect(report.finalTags).toBeGreaterThan(0);
}

describe('scrub soak (short form)', () => {
  it.skipIf(skipWithout('the scrub soak on fs + Redis', 'redis-server'))(
    'fs + the Redis lock, 2 replicas: 0 broken pulls and 0 5xx while scrub runs in a loop',
    async () => expectHealthy(await shortForm('fs-redis')),
    300_000,
  );

  it.skipIf(s3 === null)(
    'S3 (Ceph RGW) + the S3 lock, 2 replicas: 0 broken pulls and 0 5xx while scrub runs in a loop',
    async () => expectHealthy(await shortForm('s3')),
    300_000,
  );

  // With the memory lock each repairing scrub hands its run to the server (services/cli
  // scrub-handoff.ts): a refused or failed hand-off is a scrub failure (exit 1).
  it('fs + the memory lock, one server, scrub as a second process (handed off): 0 broken pulls and 0 5xx', async () => {
    const report = await shortForm('fs-memory');
    expectHealthy(report);
    // Every run was the server's: none ran beside it with locks of its own.
    expect(report.handedOffRuns).toBe(report.scrubRuns);
  }, 300_000);

  it.skipIf(skipWithout('the scrub soak on fs + Redis', 'redis-server'))(
    'fs + the Redis lock, one server, scrub as a second process: 0 broken pulls and 0 5xx',
    async () => expectHealthy(await shortForm('fs-single')),
    300_000,
  );
});
