import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the heap grow past what its last full collection kept: twice that. V8's own
 * factor rises to 4× when collections are fast, as a registry's are (~17 MiB live), so a burst of
 * small requests grew each serving thread's heap to ~60 MiB, and V8 keeps the pages of a heap that
 * shrank for reuse: ~35 MiB more resident per thread after the burst, never given back. At 2× the heap
 * stays near 30 MiB, for ~4% fewer 4 KiB blob GETs per second and no fewer manifest GETs (2-core
 * machine, bench/results/serving-threads.md). Process-wide and read at each collection, so set
 * once at startup; a `--heap-growing-percent` given to Node itself is kept.
 */
const HEAP_GROWING_PERCENT = 100;

if (!process.execArgv.some((arg) => arg.startsWith('--heap-growing-percent'))) {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
