import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  IpcLockManager,
  ipcChannel,
  LockLostError,
  MemoryLockManager,
  messagePortChannel,
  serveLocks,
} from '../src/index.js';
import { describeLockContract } from '../src/testing/contract.js';

const CHILD = fileURLToPath(new URL('./ipc-child.mjs', import.meta.url));
const THREAD = fileURLToPath(new URL('./ipc-thread.mjs', import.meta.url));

/** A client of `table` over its own channel, as a worker process has it. */
function connect(table: MemoryLockManager): { client: IpcLockManager; disconnect(): void } {
  const { port1, port2 } = new MessageChannel();
  serveLocks(table, messagePortChannel(port1));
  return { client: new IpcLockManager(messagePortChannel(port2)), disconnect: () => port1.close() };
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describeLockContract('memory over IPC', async () => {
  // One table, as in the primary; every manager is another worker's client.
  const table = new MemoryLockManager();
  const ports: Array<() => void> = [];
  return {
    backend: 'memory',
    manager: () => {
      const { client, disconnect } = connect(table);
      ports.push(disconnect);
      return client;
    },
    async cleanup() {
      // Releases cross a channel: the table empties once they arrive.
      await until(() => table.size === 0);
      for (const disconnect of ports) disconnect();
    },
  };
});

function forkChild(args: string[]): ChildProcess {
  return fork(CHILD, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

describe('IPC locks across processes', { timeout: 30_000 }, () => {
  it('excludes worker processes from each other', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'angos-ipc-lock-'));
    try {
      const file = join(dir, 'counter');
      await writeFile(file, '0');
      const table = new MemoryLockManager();
      const children = [1, 2, 3].map(() => forkChild(['count', 'tag:ns:latest', file, '15']));
      for (const child of children) serveLocks(table, ipcChannel(child));
      await Promise.all(children.map((child) => once(child, 'exit')));
      expect(children.map((child) => child.exitCode)).toEqual([0, 0, 0]);
      expect(await readFile(file, 'utf8')).toBe('45');
      expect(table.size).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('releases the keys of a worker killed with SIGKILL at once', async () => {
    const table = new MemoryLockManager();
    const child = forkChild(['hold', 'upload:ns:id']);
    try {
      serveLocks(table, ipcChannel(child));
      await new Promise<void>((resolve) =>
        child.on('message', (message: { test?: string }) => {
          if (message.test === 'held') resolve();
        }),
      );
      const { client, disconnect } = connect(table);
      let entered = false;
      const waiting = client.withLocks(['upload:ns:id'], async () => {
        entered = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(entered).toBe(false);
      child.kill('SIGKILL');
      await waiting;
      expect(entered).toBe(true);
      await client.close();
      await until(() => table.size === 0);
      disconnect();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('releases the keys of a worker thread that ends', async () => {
    const table = new MemoryLockManager();
    const { port1, port2 } = new MessageChannel();
    serveLocks(table, messagePortChannel(port1));
    const thread = new Worker(THREAD, {
      workerData: { port: port2, key: 'upload:ns:id' },
      transferList: [port2],
    });
    try {
      await new Promise<void>((resolve) => thread.once('message', () => resolve()));
      expect(table.size).toBe(1);
      await thread.terminate();
      await until(() => table.size === 0);
    } finally {
      await thread.terminate();
      port1.close();
    }
  });

  it('aborts the work of a worker whose primary is gone, and refuses new acquisitions', async () => {
    const table = new MemoryLockManager();
    const { client, disconnect } = connect(table);
    const work = client.withLocks(['k'], async (signal) => {
      disconnect();
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    });
    const error = await work.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockLostError);
    expect((error as LockLostError).reason).toBe('ownership_lost');
    await expect(client.withLocks(['k'], async () => {})).rejects.toBeInstanceOf(LockLostError);
    await until(() => table.size === 0);
  });
});
