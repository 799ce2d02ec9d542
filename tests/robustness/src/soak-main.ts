#!/usr/bin/env node
/**
 * `pnpm soak [--seconds N] [--seed S] [--workers W] [--s3]`: the long form of the soak, on fs, or
 * with --s3 on a Ceph RGW it starts (or ANGOS_TEST_S3_ENDPOINT; session dirs are then not counted).
 */
import { parseArgs } from 'node:util';
import { withS3Storage } from './s3-server.js';
import { type SoakOptions, soak } from './soak.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    seed: { type: 'string', default: String(Date.now() % 100000) },
    workers: { type: 'string', default: '4' },
    s3: { type: 'boolean', default: false },
  },
});
const options: SoakOptions = {
  seconds: Number(values.seconds),
  seed: Number(values.seed),
  workers: Number(values.workers),
  log: (line) => process.stderr.write(`${line}\n`),
};
const report = values.s3
  ? await withS3Storage('soak', (storageToml) => soak({ ...options, storageToml }))
  : await soak(options);
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const last = report.samples.at(-1);
process.stdout.write(
  `seed ${values.seed} on ${values.s3 ? 'S3' : 'fs'}: ${values.seconds} s, operations ${JSON.stringify(report.operations)}, ` +
    `${report.abandoned} sessions abandoned\n` +
    `  baseline fds ${report.baseline?.fds} RSS ${report.baseline ? mib(report.baseline.rssBytes) : '-'}; ` +
    `peak fds ${report.peak.fds} RSS ${mib(report.peak.rssBytes)}; ` +
    `final fds ${last?.fds} RSS ${last ? mib(last.rssBytes) : '-'} session dirs ${last?.sessions ?? '-'}\n` +
    `  ${report.errors.length} errors, ${report.violations.length} bound violations\n`,
);
for (const line of [...report.errors.slice(0, 20), ...report.violations]) process.stdout.write(`  ${line}\n`);
process.exit(report.errors.length === 0 && report.violations.length === 0 ? 0 : 1);
