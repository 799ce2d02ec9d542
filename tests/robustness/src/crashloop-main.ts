#!/usr/bin/env node
/**
 * `pnpm crashloop [--kills N] [--seed S] [--s3] [--deletes]`: the long form of the crash loop, on fs
 * with sync_to_disk, or with --s3 on a Ceph RGW it starts (or ANGOS_TEST_S3_ENDPOINT); --deletes
 * adds the delete-heavy mix (shared layers, retention-style deletes, eager garbage collection).
 */
import { parseArgs } from 'node:util';
import { type CrashLoopOptions, crashLoop } from './crashloop.js';
import { withS3Storage } from './s3-server.js';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '50' },
    seed: { type: 'string', default: String(Date.now() % 100000) },
    s3: { type: 'boolean', default: false },
    deletes: { type: 'boolean', default: false },
  },
});
const options: CrashLoopOptions = {
  kills: Number(values.kills),
  seed: Number(values.seed),
  deletes: values.deletes,
  log: (line) => process.stderr.write(`${line}\n`),
};
const report = values.s3
  ? await withS3Storage('crashloop', (storageToml) => crashLoop({ ...options, storageToml }))
  : await crashLoop(options);
process.stdout.write(
  `seed ${values.seed} on ${values.s3 ? 'S3' : 'fs'}: ${report.kills} kills, ${report.acknowledged} acknowledged images, ${report.checked} checks, ` +
    `${report.deleted} deleted, ${report.refused} refused, ${report.lost.length} lost, ${report.partialReadable.length} partial blobs readable, ${report.hung.length} hung\n`,
);
const failures = [...report.lost, ...report.partialReadable, ...report.hung];
for (const line of failures) process.stdout.write(`  ${line}\n`);
process.exit(failures.length === 0 ? 0 : 1);
