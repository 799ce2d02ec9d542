import { spawnSync } from 'node:child_process';
import { startRedisServer } from '@angos/test-support';
import { Redis } from 'ioredis';

/** Debian's `redis-server` (package redis-server); tests that need it skip without it outside CI. */
export const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

export interface RedisServer {
  readonly url: string;
  /** A client for inspecting what the code under test stored. */
  readonly client: Redis;
  stop(): Promise<void>;
}

/** A throwaway redis-server (test-support's) with a client connected to it. */
export async function startRedis(): Promise<RedisServer> {
  const server = await startRedisServer();
  const client = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  client.on('error', () => {});
  return {
    url: server.url,
    client,
    async stop() {
      client.disconnect();
      await server.stop();
    },
  };
}
