#!/usr/bin/env node
/**
 * `pnpm soak-scrub [--seconds N] [--seed S] [--setup fs-memory|fs-single|fs-redis|s3] [--logs DIR]`: the
 * long form of the scrub soak (default one hour on fs-redis); --logs keeps every scrub run's log,
 * the replicas' output and the acknowledged tags in DIR. The s3 setup starts a Ceph RGW, or uses
 * ANGOS_TEST_S3_ENDPOINT. Exits 1 on a broken pull, a 5xx, a failed scrub run or a dead replica.
 */
import { parseArgs } from 'node:util';
import { startS3TestServer } from '@angos/test-support';
import { type ScrubSoakOptions, type ScrubSoakReport, soakScrub } from './soak-scrub.js';
import { SCRUB_SOAK_SETUPS, type ScrubSoakSetup } from './soak-scrub-cluster.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3600' },
    seed: { type: 'string', default: String(Date.now() % 100000) },
    setup: { type: 'string', default: 'fs-redis' },
    logs: { type: 'string' },
  },
});
// Interrupted: exit, so that test-support kills the replicas and scrub runs it started.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
const setup = values.setup as ScrubSoakSetup;
if (!SCRUB_SOAK_SETUPS.includes(setup)) {
  process.stderr.write(`--setup must be one of ${SCRUB_SOAK_SETUPS.join(', ')}\n`);
  process.exit(2);
}
const options: ScrubSoakOptions = {
  setup,
  seconds: Number(values.seconds),
  seed: Number(values.seed),
  log: (line) => process.stderr.write(`${line}\n`),
  logDir: values.logs,
};

let report: ScrubSoakReport;
if (setup === 's3') {
  const s3 = await startS3TestServer();
  try {
    report = await soakScrub({ ...options, s3 });
  } finally {
    await s3.stop();
  }
} else {
  report = await soakScrub(options);
}
process.stdout.write(
  `seed ${values.seed} on ${setup}: ${values.seconds} s\n` +
    `  pushes ${report.pushes} acknowledged, ${report.pushesRefused} refused, ${report.blobsReused} blobs reused\n` +
    `  pulls ${report.pulls} (${report.blobPulls} blobs), ${report.excusedPulls} of deleted manifests\n` +
    `  scrub runs ${report.scrubRuns} (${report.handedOffRuns} handed off to a server), ${report.scrubFailures.length} failed; retention deleted ${report.retentionDeletes} manifests\n` +
    `  repairs ${JSON.stringify(report.repairs)}\n` +
    `  final: ${report.finalTags} kept tags pulled from every replica\n` +
    `  ${report.brokenPulls.length} broken pulls, ${report.serverErrors.length} server errors, dead replicas [${report.deadReplicas.join(', ')}]\n`,
);
for (const line of [
  ...report.brokenPulls.slice(0, 20),
  ...report.serverErrors.slice(0, 20),
  ...report.scrubFailures.slice(0, 10),
])
  process.stdout.write(`  ${line}\n`);
const healthy =
  report.brokenPulls.length === 0 &&
  report.serverErrors.length === 0 &&
  report.scrubFailures.length === 0 &&
  report.deadReplicas.length === 0;
process.exit(healthy ? 0 : 1);
