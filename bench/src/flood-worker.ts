import { Agent } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import { send } from './client.js';
import { BENCH_USER } from './subjects.js';

export interface FloodSettings {
  readonly url: string;
  readonly round: number;
  readonly requests: number;
  readonly connections: number;
}

export type FloodMessage =
  | { readonly kind: 'progress'; readonly answered: number }
  | { readonly kind: 'done'; readonly statuses: [number, number][] };

/**
 * `requests` requests with a wrong password, each a new one (a guess, new each round too: a pair
 * that failed before is refused from memory without Argon2), over `connections` keep-alive
 * connections, each from a loopback address of its own (127.0.<round + 1>.x: new addresses each
 * round, which no earlier round's failures count against), as guesses from many clients would
 * come: a per-address limit stops each address after a few, not the flood. They ask for `/v2/`,
 * whose answer costs nothing: what is measured is what checking passwords costs others.
 * Run on a worker thread by scenarios.ts; it reports progress and the answers' statuses.
 */
async function flood(settings: FloodSettings): Promise<void> {
  const statuses = new Map<number, number>();
  let next = 0;
  let answered = 0;
  await Promise.all(
    Array.from({ length: settings.connections }, async (_, connection) => {
      const localAddress = `127.0.${settings.round + 1}.${connection + 1}`;
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        while (next < settings.requests) {
          const guess = next++;
          const password = `wrong-${settings.round}-${guess}`;
          const credentials = Buffer.from(`${BENCH_USER.username}:${password}`).toString('base64');
          const reply = await send(`${settings.url}/v2/`, 'GET', {
            agent,
            localAddress,
            discard: true,
            headers: { Authorization: `Basic ${credentials}` },
          });
          statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
          answered += 1;
          if (answered % 50 === 0)
            parentPort?.postMessage({ kind: 'progress', answered } satisfies FloodMessage);
        }
      } finally {
        agent.destroy();
      }
    }),
  );
  parentPort?.postMessage({ kind: 'done', statuses: [...statuses] } satisfies FloodMessage);
}

if (parentPort !== null) await flood(workerData as FloodSettings);
