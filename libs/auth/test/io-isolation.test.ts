import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '@angos/config';
import { createMetrics, silentLogger } from '@angos/observability';
import { describe, expect, it } from 'vitest';
import { createAuth } from '../src/auth.js';

/** Real hash of "secret" with the parameters `angos argon` uses (m=19456, t=2): tens of ms each. */
const SECRET_HASH =
  '$argon2id$v=19$m=19456,t=2,p=1$6surVjzDIpEmx03OUZEePg$dJEa9+zw5wGXxCt/ynjsLXtDgufz3DcbA6K5mjGEn2Q';

function request(authorization: string, remoteAddress: string): IncomingMessage {
  return { headers: { authorization }, socket: { remoteAddress } } as unknown as IncomingMessage;
}

describe('password checks and storage I/O', () => {
  it('do not share threads: a file read completes while the Argon2 queue is still full', async () => {
    const { config } = parseConfig(
      `[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n` +
        `[auth.identity.alice]\nusername = "alice"\npassword = "${SECRET_HASH}"\n`,
    );
    const auth = createAuth({
      config: () => config,
      logger: silentLogger,
      metrics: createMetrics({ defaultMetrics: false }),
    });
    const dir = await mkdtemp(join(tmpdir(), 'angos-argon2-io-'));
    try {
      const file = join(dir, 'blob');
      await writeFile(file, Buffer.alloc(64 * 1024, 7));
      // A flood of distinct wrong passwords from as many addresses (no per-address limit applies):
      // each one is Argon2 work. Before this pool, every one went to libuv's four threads, ahead
      // of the read below.
      const total = 48;
      let done = 0;
      const flood = Array.from({ length: total }, (_, i) =>
        auth
          .authenticate(request(`Basic ${Buffer.from(`alice:guess-${i}`).toString('base64')}`, `10.9.0.${i}`))
          .finally(() => {
            done += 1;
          }),
      );
      await new Promise((resolve) => setImmediate(resolve));
      const read = await readFile(file);
      const doneWhenRead = done;
      await Promise.all(flood);
      expect(read.length).toBe(64 * 1024);
      // Qualitative, not a timing bound: the read did not wait for the flood to drain.
      expect(doneWhenRead).toBeLessThan(total / 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await auth.close();
    }
    // 48 Argon2 checks on two low-priority threads take seconds on a loaded 2-core machine.
  }, 60_000);
});
