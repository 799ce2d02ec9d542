import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface S3Server {
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  stop(): Promise<void>;
}

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Ten consecutive free ports (start-s3.sh uses PORT..PORT+9). */
async function freePortRange(): Promise<number> {
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    let free = true;
    for (let port = base; port < base + 10 && free; port++) free = await isFree(port);
    if (free) return base;
  }
}

/**
 * A throwaway Ceph RGW (a real S3 server) from the shared `start-s3.sh`, on free ports.
 * `script` is the path of start-s3.sh.
 */
export async function startS3Server(script: string): Promise<S3Server> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePortRange();
    try {
      const { stdout } = await run('bash', [script, String(port)], { timeout: 180_000 });
      const env = Object.fromEntries(
        stdout
          .split('\n')
          .filter((line) => line.includes('='))
          .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
      );
      return {
        endpoint: env['S3_ENDPOINT']!,
        region: env['S3_REGION']!,
        bucket: env['S3_BUCKET']!,
        accessKeyId: env['S3_ACCESS_KEY']!,
        secretAccessKey: env['S3_SECRET_KEY']!,
        async stop() {
          await run('bash', [script, 'stop', String(port)], { timeout: 60_000 });
        },
      };
    } catch (error) {
      lastError = error;
      await run('bash', [script, 'stop', String(port)]).catch(() => {});
    }
  }
  throw new Error(`could not start the S3 server: ${String(lastError)}`);
}
