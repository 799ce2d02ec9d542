import type { Logger } from '@angos/observability';
import { silentLogger } from '@angos/observability';
import { afterEach } from 'vitest';
import { type RunningService, startServer } from '../src/index.js';
import { useWorkspace, type Workspace } from './helpers.js';

/**
 * The workspace of a test file (see useWorkspace) and `angos server` run in this process on its
 * configuration, on one serving thread: `start` listens on 127.0.0.1 (a port the kernel picks); the server is closed
 * after each test (closing is idempotent, so a test may close it itself).
 */
export function useInProcessServer(): {
  ws: () => Workspace;
  start(logger?: Logger): Promise<RunningService>;
} {
  const ws = useWorkspace();
  let running: RunningService | undefined;
  afterEach(async () => {
    const service = running;
    running = undefined;
    await service?.close();
  });
  return {
    ws,
    async start(logger = silentLogger) {
      // One thread, this one: serving threads log to stderr, not to the logger given here, and
      // these tests read the logger (and TLS reloads through it).
      running = await startServer({ configPath: ws().configPath, listen: '127.0.0.1:0', workers: 1, logger });
      return running;
    },
  };
}
