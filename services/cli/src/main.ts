#!/usr/bin/env node
// First, before any module that may touch the file system: the size of libuv's pool.
import './threadpool.js';
// Then how far V8's heap may grow, before it has grown.
import './heap-growth.js';
import { workerData } from 'node:worker_threads';
import { isServingThreadData } from './thread-data.js';

if (isServingThreadData(workerData)) {
  const { runServingThread } = await import('./serving-thread.js');
  await runServingThread(workerData);
} else {
  const { runCli } = await import('./cli.js');
  const status = await runCli(process.argv.slice(2));
  process.exitCode = status;
  // Let pending output flush, but never let a stray handle keep a finished command alive.
  setTimeout(() => process.exit(status), 1000).unref();
}
