import { defaultWorkerCount } from './workers.js';

/**
 * libuv's thread pool does the file system and crypto work of every thread of the process: four
 * threads by default, too few for serving threads on every core the process may use. Sized before
 * its first use (it starts with the first asynchronous fs call), unless the operator chose a size.
 */
const MIN_POOL_SIZE = 4;
process.env['UV_THREADPOOL_SIZE'] ??= String(Math.max(MIN_POOL_SIZE, defaultWorkerCount()));
