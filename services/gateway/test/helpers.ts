import { createServer } from 'node:http';
import { type Auth, createAuth } from '@angos/auth';
import { type Config, parseConfig } from '@angos/config';
import { createHttpServer, type Handler } from '@angos/http';
import { createMetrics, type Metrics, silentLogger } from '@angos/observability';
import { type Listening, listenOnFreePort } from '@angos/test-support';
import { afterEach } from 'vitest';
import { buildGateway, type GatewayDeps, type Upstream } from '../src/index.js';

export const listen = listenOnFreePort;
export type Running = Listening;

/**
 * Closes after each test of the calling file what it started: wrap each start in the function
 * returned (`await track(startGateway(...))`).
 */
export function closedAfterEach(): (running: Promise<Running>) => Promise<Running> {
  const started: Running[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((r) => r.close()));
  });
  return async (running) => {
    const r = await running;
    started.push(r);
    return r;
  };
}

/** A plain node:http server standing in for registry-api (or a webhook, or an OIDC provider). */
export function listenUpstream(handler: Handler): Promise<Running> {
  return listen(
    createServer((req, res) => {
      void handler(req, res);
    }),
  );
}

/** Test passwords, hashed with cheap Argon2id parameters (m=64, t=1) to keep the suite fast. */
export const USERS = {
  alice: {
    password: 'alice-secret',
    hash: '$argon2id$v=19$m=64,t=1,p=1$bC87hUMfbQpL2Jjl8j+RxQ$OOKrstt+HXHBcNpma8p9Sxx9K6GmHQ9hEuXjr6aomp8',
  },
  admin: {
    password: 'admin-secret',
    hash: '$argon2id$v=19$m=64,t=1,p=1$WeMtAjQBC5bJxS96k+yaiw$mNu1xuwuKkLp7rUmmoSVIkNWC6sLweHq0h910pK1NPk',
  },
} as const;

/** `[auth.identity.alice]` and `[auth.identity.admin]`. */
export const IDENTITIES = Object.entries(USERS)
  .map(([name, user]) => `[auth.identity.${name}]\nusername = "${name}"\npassword = "${user.hash}"\n`)
  .join('\n');

export function basic(user: keyof typeof USERS, password: string = USERS[user].password): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** A full configuration: the smallest valid one followed by `toml`. */
export function configOf(toml: string): Config {
  return parseConfig(`[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n${toml}`)
    .config;
}

export const ALLOW_ALL = '[global.access_policy]\ndefault = "allow"\n';

export interface GatewayUnderTest extends Running {
  readonly metrics: Metrics;
  readonly auth: Auth;
}

/** Starts a gateway; pass a function as `config` to change the configuration while it runs. */
export async function startGateway(
  upstream: Upstream,
  config: string | (() => Config) = ALLOW_ALL,
  extra: Partial<GatewayDeps> = {},
): Promise<GatewayUnderTest> {
  const metrics = createMetrics({ defaultMetrics: false });
  const fixed = typeof config === 'string' ? configOf(config) : undefined;
  const current = typeof config === 'function' ? config : () => fixed as Config;
  const auth = createAuth({ config: current, logger: silentLogger, metrics });
  const handler = buildGateway({ auth, config: current, logger: silentLogger, metrics, upstream, ...extra });
  const running = await listen(createHttpServer(handler, { logger: silentLogger }));
  return {
    ...running,
    metrics,
    auth,
    async close() {
      await running.close();
      await auth.close();
    },
  };
}
