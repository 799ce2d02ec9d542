import { captureLogger, eventually } from '@angos/test-support';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningService, startService } from '../src/index.js';
import { baseConfig, fresh, useWorkspace } from './helpers.js';

/**
 * A serving thread that ends is replaced, and the service answers throughout.
 * The threads run test/fixtures/ending-thread.mjs: the CLI's own entry, which also reports its
 * start and ends when told to on a BroadcastChannel (the threads share this process's channels).
 */

const ws = useWorkspace();
let service: RunningService | undefined;
afterEach(async () => {
  await service?.close();
  service = undefined;
});

const ENDING_THREAD = new URL('./fixtures/ending-thread.mjs', import.meta.url);

describe('a serving thread that ends', () => {
  it('is started again, the first thread as the others, while the service keeps answering', async () => {
    await ws().writeConfig(baseConfig(ws().dir, 1, '[global.access_policy]\ndefault = "allow"\n'));
    const channel = new BroadcastChannel('angos-test:threads');
    const starts: number[] = [];
    channel.onmessage = ({ data }: MessageEvent) => {
      if (typeof data?.started === 'number') starts.push(data.started);
    };
    try {
      const { logger, output } = captureLogger('info');
      service = await startService({
        kind: 'server',
        configPath: ws().configPath,
        listen: '127.0.0.1:0',
        workers: 2,
        threadEntry: ENDING_THREAD,
        logger,
      });
      const url = `http://127.0.0.1:${service.address.port}/v2/`;
      await eventually(() => starts.length === 2);
      expect(starts.sort()).toEqual([0, 1]);

      for (const index of [1, 0]) {
        const before = starts.filter((started) => started === index).length;
        channel.postMessage({ end: index });
        await eventually(() =>
          output().includes(`"message":"serving thread ended; starting a new one","worker":${index}`),
        );
        // Answered by the other thread while this one is gone, then by both.
        expect((await fresh(url)).status).toBe(200);
        await eventually(() => starts.filter((started) => started === index).length === before + 1, {
          timeoutMs: 10_000,
        });
        const answers = await Promise.all(Array.from({ length: 20 }, async () => (await fresh(url)).status));
        expect(answers.every((status) => status === 200)).toBe(true);
      }
    } finally {
      channel.close();
    }
  }, 60_000);
});
