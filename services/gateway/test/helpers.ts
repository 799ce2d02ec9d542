import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpServer, type Handler } from '@angos/http';
import { createMetrics, silentLogger } from '@angos/observability';
import { buildGateway, type GatewayDeps, type PolicyConfig, type Upstream } from '../src/index.js';

export interface Running {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

export async function listen(server: Server): Promise<Running> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A plain node:http server standing in for registry-api. */
export function listenUpstream(handler: Handler): Promise<Running> {
  return listen(
    createServer((req, res) => {
      void handler(req, res);
    }),
  );
}

export const allowAll: PolicyConfig = { global: { access_policy: { default: 'allow' } } };

/** Starts a gateway; pass a function as `config` to change the configuration while it runs. */
export function startGateway(
  upstream: Upstream,
  config: PolicyConfig | (() => PolicyConfig) = allowAll,
  extra: Partial<GatewayDeps> = {},
) {
  const metrics = createMetrics({ defaultMetrics: false });
  const current = typeof config === 'function' ? config : () => config;
  const handler = buildGateway({ config: current, logger: silentLogger, metrics, upstream, ...extra });
  return listen(createHttpServer(handler, { requestTimeoutSecs: 30, logger: silentLogger }));
}
