#!/usr/bin/env node
/**
 * `pnpm fuzz [--requests N] [--seed S] [--s3] [--auth]`: the long form of the HTTP fuzz run against
 * `angos server`, on fs, or with --s3 on a Ceph RGW it starts (or ANGOS_TEST_S3_ENDPOINT). With
 * --auth, the authentication fuzz run instead: the fixed cases, then N seeded mutations.
 */
import { parseArgs } from 'node:util';
import { type FuzzOptions, fuzz } from './fuzz.js';
import { fuzzAuth } from './fuzz-auth.js';
import { withS3Storage } from './s3-server.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    seed: { type: 'string', default: String(Date.now() % 100000) },
    s3: { type: 'boolean', default: false },
    auth: { type: 'boolean', default: false },
  },
});
const options: FuzzOptions = { requests: Number(values.requests), seed: Number(values.seed) };
const report = values.auth
  ? await fuzzAuth({ mutations: options.requests, seed: options.seed })
  : values.s3
    ? await withS3Storage('fuzz', (storageToml) => fuzz({ ...options, storageToml }))
    : await fuzz(options);
const target = values.auth ? 'authentication' : values.s3 ? 'S3' : 'fs';
process.stdout.write(
  `seed ${values.seed} on ${target}: ${report.requests} requests, statuses ${JSON.stringify(report.statuses)}, ${report.failures.length} failures\n`,
);
for (const line of report.failures.slice(0, 50)) process.stdout.write(`  ${line}\n`);
process.exit(report.failures.length === 0 ? 0 : 1);
