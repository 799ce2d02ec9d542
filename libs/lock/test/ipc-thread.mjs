// A serving thread of the IPC lock tests: holds a key from the main thread's table until it ends.
import { parentPort, workerData } from 'node:worker_threads';
import { IpcLockManager, messagePortChannel } from '../dist/index.js';

const locks = new IpcLockManager(messagePortChannel(workerData.port));
await locks.withLocks([workerData.key], async () => {
  parentPort.postMessage('held');
  await new Promise(() => {});
});
