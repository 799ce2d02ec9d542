#!/usr/bin/env node
import { installCommand, missingPrograms, RGW_PROGRAMS } from './optional.js';
import { rgwDataDir, startRgw, stopRgw } from './rgw.js';

/**
 * `scripts/start-s3.sh [PORT]` and `scripts/start-s3.sh stop [PORT]`: a throw-away Ceph RGW for
 * trying Angos on S3. Start prints shell assignments (S3_ENDPOINT=…) on stdout and nothing else,
 * so `vars=$(scripts/start-s3.sh) && eval "$vars"` either sets them or fails; progress and
 * errors go to stderr, and a failure exits 1.
 */
const USAGE = `usage: start-s3.sh [PORT]        start Ceph RGW on 127.0.0.1:PORT (default 5300; uses PORT..PORT+9)
       start-s3.sh stop [PORT]   stop it and delete its data`;

async function main(args: string[]): Promise<void> {
  const stopping = args[0] === 'stop';
  const rest = stopping ? args.slice(1) : args;
  if (rest.length > 1 || rest[0] === '-h' || rest[0] === '--help') throw new Error(USAGE);
  const port = Number(rest[0] ?? 5300);
  if (!Number.isInteger(port) || port < 1024 || port > 65526)
    throw new Error(`not a port: ${rest[0]}\n${USAGE}`);
  const dataDir = process.env['S3_DATA_DIR'] ?? rgwDataDir(port);
  if (stopping) {
    await stopRgw(dataDir);
    console.error(`stopped Ceph RGW on port ${port}`);
    return;
  }
  const missing = missingPrograms(RGW_PROGRAMS);
  if (missing.length > 0)
    throw new Error(`${missing.join(', ')} not installed; run: sudo ${installCommand(RGW_PROGRAMS)}`);
  const s3 = await startRgw({
    port,
    dataDir,
    ...(process.env['S3_BUCKET'] && { bucket: process.env['S3_BUCKET'] }),
    log: (line) => console.error(`start-s3: ${line}`),
  });
  console.error(`start-s3: stop it with: scripts/start-s3.sh stop ${port}`);
  console.log(
    [
      `S3_ENDPOINT=${s3.endpoint}`,
      `S3_REGION=${s3.region}`,
      `S3_BUCKET=${s3.bucket}`,
      `S3_ACCESS_KEY=${s3.accessKeyId}`,
      `S3_SECRET_KEY=${s3.secretAccessKey}`,
      `AWS_ACCESS_KEY_ID=${s3.accessKeyId}`,
      `AWS_SECRET_ACCESS_KEY=${s3.secretAccessKey}`,
    ].join('\n'),
  );
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  console.error(`start-s3: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
