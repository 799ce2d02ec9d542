#!/usr/bin/env node
/** `pnpm fuzz [--requests N] [--seed S]`: the long form of the HTTP fuzz run against `angos server` on fs. */
import { parseArgs } from 'node:util';
import { fuzz } from './fuzz.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    seed: { type: 'string', default: String(Date.now() % 100000) },
  },
});
const report = await fuzz({ requests: Number(values.requests), seed: Number(values.seed) });
process.stdout.write(
  `seed ${values.seed}: ${report.requests} requests, statuses ${JSON.stringify(report.statuses)}, ${report.failures.length} failures\n`,
);
for (const line of report.failures.slice(0, 50)) process.stdout.write(`  ${line}\n`);
process.exit(report.failures.length === 0 ? 0 : 1);
