import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLockManager } from '@angos/lock';
import { createMetadataStore } from '@angos/storage';
import { describeJobQueueContract } from './contract.js';

// The in-memory store with the in-process lock (angos server's own drain, one process).
describeJobQueueContract('memory store, memory lock', async () => {
  const locks = new MemoryLockManager();
  return {
    store: createMetadataStore({ kind: 'memory' }),
    locks: () => locks,
    lockTtlMs: 0,
    async cleanup() {},
  };
});

// A directory on disk with the in-process lock.
describeJobQueueContract('fs store, memory lock', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'angos-jobs-'));
  const locks = new MemoryLockManager();
  return {
    store: createMetadataStore({ kind: 'fs', rootDir: dir, syncToDisk: false }),
    locks: () => locks,
    lockTtlMs: 0,
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
});
