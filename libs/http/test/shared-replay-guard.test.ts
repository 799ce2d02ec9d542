import { describe, expect, it } from 'vitest';
import { SHARED_NONCE_MEMORY_BYTES, SharedReplayGuard } from '../src/index.js';
import { raceInThreads } from './racing-threads.js';

const T0 = 1_800_000_000_000;
const memory = () => new SharedArrayBuffer(SHARED_NONCE_MEMORY_BYTES);

describe('SharedReplayGuard', () => {
  it('admits a nonce once within the window, through any guard over the same memory', () => {
    const shared = memory();
    const first = new SharedReplayGuard(shared, { windowMs: 1_000, now: () => T0 });
    const second = new SharedReplayGuard(shared, { windowMs: 1_000, now: () => T0 });
    expect(first.admit(T0, 'a')).toBe('ok');
    expect(second.admit(T0, 'a')).toBe('replayed');
    expect(first.admit(T0, 'a')).toBe('replayed');
    expect(second.admit(T0 - 500, 'b')).toBe('ok');
    expect(first.admit(T0 - 1_001, 'c')).toBe('outside-window');
    expect(first.admit(T0 + 1_001, 'd')).toBe('outside-window');
    // Guards over other memory share nothing.
    expect(new SharedReplayGuard(memory(), { windowMs: 1_000, now: () => T0 }).admit(T0, 'a')).toBe('ok');
  });

  it('remembers a nonce for as long as its timestamp passes the window, a future one included', () => {
    const clock = { now: T0 };
    const guard = new SharedReplayGuard(memory(), { windowMs: 1_000, now: () => clock.now });
    // Stamped a whole window ahead of this clock: valid until T0 + 2,000.
    expect(guard.admit(T0 + 1_000, 'ahead')).toBe('ok');
    for (const now of [T0 + 500, T0 + 1_200, T0 + 1_900, T0 + 2_000]) {
      clock.now = now;
      expect(guard.admit(now, `filler-${now}`)).toBe('ok');
      expect(guard.admit(T0 + 1_000, 'ahead')).toBe('replayed');
    }
    clock.now = T0 + 2_001;
    expect(guard.admit(T0 + 1_000, 'ahead')).toBe('outside-window');
  });

  it('refuses what it may have forgotten when a generation fills before its window ends', () => {
    const clock = { now: T0 };
    const guard = new SharedReplayGuard(memory(), { windowMs: 60_000, now: () => clock.now });
    // More nonces than the memory's three generations hold (131,072 each) within one window.
    const admitted = 400_000;
    for (let i = 0; i < admitted; i += 1) {
      clock.now = T0 + Math.floor(i / 100);
      const result = guard.admit(clock.now, `n${i}`);
      if (result !== 'ok') throw new Error(`n${i}: ${result}`);
    }
    // The first nonces were dropped inside the window: their replays are refused all the same.
    expect(guard.admit(T0, 'n0')).toBe('outside-window');
    expect(guard.admit(clock.now, `n${admitted - 1}`)).toBe('replayed');
    expect(guard.admit(clock.now, 'fresh')).toBe('ok');
  }, 60_000);

  it('admits each nonce exactly once when threads race on the same ones', async () => {
    const shared = memory();
    const nonces = 5_000;
    const source = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.module).then(({ SharedReplayGuard }) => {
        const guard = new SharedReplayGuard(workerData.shared);
        const now = Date.now();
        let ok = 0;
        for (let i = 0; i < workerData.nonces; i++) if (guard.admit(now, 'nonce-' + i) === 'ok') ok++;
        parentPort.postMessage(ok);
      });
    `;
    const module = new URL('../dist/shared-replay-guard.js', import.meta.url).href;
    const counts = await raceInThreads<number>(source, { module, shared, nonces });
    expect(counts.reduce((sum, count) => sum + count, 0)).toBe(nonces);
  });
});
