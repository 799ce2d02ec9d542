import { Worker } from 'node:worker_threads';

/**
 * Runs `source` (a CommonJS script reading `workerData` and answering once on `parentPort`) in
 * `threads` worker threads at once, for tests of what threads share; resolves with each answer.
 */
export function raceInThreads<T>(source: string, workerData: unknown, threads = 4): Promise<T[]> {
  return Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise<T>((resolve, reject) => {
          const worker = new Worker(source, { eval: true, workerData });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
}
