import { startRedisServer } from '@angos/test-support';
import { Redis } from 'ioredis';

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
