// A worker process of the IPC lock tests: takes locks from the parent's table over its IPC channel.
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { IpcLockManager, ipcChannel } from '../dist/index.js';

const [mode, key, file, times] = process.argv.slice(2);
const locks = new IpcLockManager(ipcChannel(process));

if (mode === 'hold') {
  // Holds the key until killed.
  await locks.withLocks([key], async () => {
    process.send({ test: 'held' });
    await new Promise(() => {});
  });
} else if (mode === 'count') {
  // Read, pause, write: a lost update shows unless the workers exclude each other.
  for (let i = 0; i < Number(times); i++) {
    await locks.withLocks([key], async () => {
      const value = Number(await readFile(file, 'utf8'));
      await sleep(1);
      await writeFile(file, String(value + 1));
    });
  }
  await locks.close();
  process.disconnect();
}
