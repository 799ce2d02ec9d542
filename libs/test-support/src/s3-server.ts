import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RGW_PROGRAMS, skipWithout, startOptional } from './optional.js';
import { freePortRange } from './ports.js';
import {
  RGW_ACCESS_KEY,
  RGW_PORTS,
  RGW_REGION,
  RGW_SECRET_KEY,
  restartRgwGateway,
  type S3Endpoint,
  startRgw,
  stopRgw,
} from './rgw.js';

export type { S3Endpoint } from './rgw.js';

export interface S3TestServer extends S3Endpoint {
  /** Kills radosgw and starts it again, data intact (absent for an ANGOS_TEST_S3_ENDPOINT server). */
  restartGateway?(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const START_ATTEMPTS = 4;

/**
 * An S3 server for this test run: the one `ANGOS_TEST_S3_ENDPOINT` names (left running; bucket
 * and keys default to the RGW starter's), or a new Ceph RGW on a free range of ports, stopped by
 * `stop()`.
 */
export async function startS3TestServer(): Promise<S3TestServer> {
  const external = process.env['ANGOS_TEST_S3_ENDPOINT'];
  if (external) {
    return {
      endpoint: external,
      region: process.env['ANGOS_TEST_S3_REGION'] ?? RGW_REGION,
      bucket: process.env['ANGOS_TEST_S3_BUCKET'] ?? 'test-bucket',
      accessKeyId: process.env['ANGOS_TEST_S3_ACCESS_KEY'] ?? RGW_ACCESS_KEY,
      secretAccessKey: process.env['ANGOS_TEST_S3_SECRET_KEY'] ?? RGW_SECRET_KEY,
      stop: async () => {},
    };
  }
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePortRange(RGW_PORTS);
    const dataDir = join(tmpdir(), `angos-rgw-${process.pid}-${port}`);
    try {
      const endpoint = await startRgw({ port, dataDir });
      return {
        ...endpoint,
        restartGateway: (downMs) => restartRgwGateway(dataDir, downMs),
        stop: () => stopRgw(dataDir),
      };
    } catch (error) {
      // Another process may have taken one of the ports in between: try another range.
      lastError = error;
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  throw lastError;
}

/**
 * For a test run's set-up: the server, or null (with a warning naming the install command) when
 * Ceph is not installed and this is not CI; the S3 suites then skip. A server that is installed
 * but does not start fails the run.
 */
export function startS3ForTests(): Promise<S3TestServer | null> {
  return startOptional('the S3 tests (Ceph RGW)', s3Programs(), startS3TestServer);
}

/**
 * Whether the tests of `what` that start their own S3 server with `startS3TestServer` are skipped
 * (for `describe.skipIf`): the same rule as `skipWithout`, for Ceph's programs.
 */
export function skipWithoutS3(what: string): boolean {
  return skipWithout(what, ...s3Programs());
}

/** What an S3 server for the tests needs: nothing when ANGOS_TEST_S3_ENDPOINT names one. */
const s3Programs = (): string[] => (process.env['ANGOS_TEST_S3_ENDPOINT'] ? [] : [...RGW_PROGRAMS]);
