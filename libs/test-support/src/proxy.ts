import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import { type Listening, listenOnFreePort } from './listen.js';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
}

/**
 * A plain-HTTP proxy in front of a registry (an upstream of the pull-through cache) that records
 * every request and forwards it, unless `intercept` answers it itself (returns true).
 */
export interface TestProxy extends Listening {
  readonly seen: SeenRequest[];
  intercept: (req: IncomingMessage, res: ServerResponse) => boolean;
  /**
   * Makes blob bodies (only those of `digest`, when given) stop after their first `afterBytes`
   * bytes until released: a download then stays in progress for as long as a test needs. With
   * `start`, such a blob's GET reaches the target only once `start` resolves: every client a test
   * sends meanwhile has joined a cache fill before its first byte.
   */
  hold(afterBytes: number, digest?: string, start?: Promise<void>): { release(): void };
}

export async function startProxy(
  target: string,
  intercept: (req: IncomingMessage, res: ServerResponse) => boolean = () => false,
): Promise<TestProxy> {
  let held:
    | { afterBytes: number; digest: string | undefined; released: Promise<void>; start: Promise<void> }
    | undefined;
  const seen: SeenRequest[] = [];
  const proxy = { seen, intercept };
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    if (proxy.intercept(req, res)) return;
    const url = req.url ?? '';
    const hold =
      req.method === 'GET' &&
      /\/blobs\/sha256:/.test(url) &&
      (held?.digest === undefined || url.endsWith(held.digest))
        ? held
        : undefined;
    if (hold !== undefined) {
      void hold.start.then(() => forwardTo(req, res, hold));
      return;
    }
    forwardTo(req, res, hold);
  });
  const forwardTo = (req: IncomingMessage, res: ServerResponse, hold: typeof held) => {
    const forward = request(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: { ...req.headers, host: new URL(target).host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (hold === undefined) {
          answer.pipe(res);
          return;
        }
        void (async () => {
          let sent = 0;
          for await (const chunk of answer) {
            const data = chunk as Buffer;
            if (sent < hold.afterBytes && sent + data.length >= hold.afterBytes) {
              const first = data.subarray(0, hold.afterBytes - sent);
              res.write(first);
              sent += first.length;
              await hold.released;
              res.write(data.subarray(first.length));
              sent += data.length - first.length;
            } else {
              res.write(data);
              sent += data.length;
            }
          }
          res.end();
        })().catch(() => res.destroy());
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  };
  const listening = await listenOnFreePort(server);
  return Object.assign(proxy, listening, {
    hold(afterBytes: number, digest?: string, start: Promise<void> = Promise.resolve()) {
      let release!: () => void;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      held = { afterBytes, digest, released, start };
      return {
        release: () => {
          held = undefined;
          release();
        },
      };
    },
  });
}
