import type { Server } from 'node:http';
import type { Logger } from '@angos/observability';

/**
 * Stops accepting and waits for in-flight requests, up to `boundMs`; then cuts what is left.
 * Idle keep-alive connections are closed as they appear, so clients do not hold the process open.
 */
export async function drain(server: Server, boundMs: number, logger: Logger): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const sweep = setInterval(() => server.closeIdleConnections(), 100);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>((resolve) => {
    timer = setTimeout(() => resolve('expired'), boundMs);
  });
  try {
    server.closeIdleConnections();
    if ((await Promise.race([closed, expired])) === 'expired') {
      logger.warn('shutdown grace period over, closing remaining connections', { grace_ms: boundMs });
      server.closeAllConnections();
      await closed;
    }
  } finally {
    clearInterval(sweep);
    clearTimeout(timer);
  }
}
