import { describe, expect, it } from 'vitest';
import { IN_FLIGHT_COUNTER_BYTES, localInFlightCounter, sharedInFlightCounter } from '../src/index.js';
import { raceInThreads } from './racing-threads.js';

describe('in-flight counters', () => {
  it('count up to the limit and no further', () => {
    for (const counter of [
      localInFlightCounter(),
      sharedInFlightCounter(new SharedArrayBuffer(IN_FLIGHT_COUNTER_BYTES)),
    ]) {
      expect(counter.tryEnter(2)).toBe(true);
      expect(counter.tryEnter(2)).toBe(true);
      expect(counter.tryEnter(2)).toBe(false);
      expect(counter.current()).toBe(2);
      counter.leave();
      expect(counter.tryEnter(2)).toBe(true);
      expect(counter.current()).toBe(2);
    }
  });

  it('never let threads racing for the last slots take more than the limit together', async () => {
    const buffer = new SharedArrayBuffer(IN_FLIGHT_COUNTER_BYTES);
    const limit = 1_000;
    const source = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.module).then(({ sharedInFlightCounter }) => {
        const counter = sharedInFlightCounter(workerData.buffer);
        let taken = 0;
        for (let i = 0; i < workerData.limit; i++) if (counter.tryEnter(workerData.limit)) taken++;
        parentPort.postMessage(taken);
      });
    `;
    const module = new URL('../dist/in-flight.js', import.meta.url).href;
    const taken = await raceInThreads<number>(source, { module, buffer, limit });
    expect(taken.reduce((sum, count) => sum + count, 0)).toBe(limit);
    expect(sharedInFlightCounter(buffer).current()).toBe(limit);
  });
});
