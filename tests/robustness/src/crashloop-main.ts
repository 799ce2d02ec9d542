#!/usr/bin/env node
/** `pnpm crashloop [--kills N] [--seed S]`: the long form of the crash loop, on fs with sync_to_disk. */
import { parseArgs } from 'node:util';
import { crashLoop } from './crashloop.js';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '50' },
    seed: { type: 'string', default: String(Date.now() % 100000) },
  },
});
const report = await crashLoop({
  kills: Number(values.kills),
  seed: Number(values.seed),
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(
  `seed ${values.seed}: ${report.kills} kills, ${report.acknowledged} acknowledged images, ${report.checked} checks, ` +
    `${report.lost.length} lost, ${report.partialReadable.length} partial blobs readable, ${report.hung.length} hung\n`,
);
const failures = [...report.lost, ...report.partialReadable, ...report.hung];
for (const line of failures) process.stdout.write(`  ${line}\n`);
process.exit(failures.length === 0 ? 0 : 1);
