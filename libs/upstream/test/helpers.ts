import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { UpstreamConfig } from '@angos/config';
import { type Listening, listenOnFreePort } from '@angos/test-support';
import { UpstreamClient, type UpstreamClientOptions } from '../src/index.js';

export {
  type SeededImage,
  type SeenRequest,
  seedImage,
  startProxy,
  type TestProxy,
} from '@angos/test-support';

/** The `[repository."<key>"]` the test clients belong to: `mirror/x` is `x` upstream. */
export const REPOSITORY = 'mirror';

export const MAX_MANIFEST_BYTES = 5 * 1024 * 1024;

/** Generous on a loaded machine, short enough that a test of a dead upstream ends quickly. */
export const TEST_TIMEOUTS = { responseMs: 15_000, idleMs: 15_000 };

export function upstreamConfig(url: string, overrides: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return { url, max_redirect: 5, ...overrides };
}

export function clientFor(
  url: string,
  overrides: Partial<UpstreamConfig> = {},
  options: Partial<UpstreamClientOptions> = {},
): UpstreamClient {
  return new UpstreamClient({
    repository: REPOSITORY,
    config: upstreamConfig(url, overrides),
    maxManifestBytes: MAX_MANIFEST_BYTES,
    timeouts: TEST_TIMEOUTS,
    ...options,
  });
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads a stream to its end or error: the bytes that came before, and the error. */
export async function readUntilError(stream: Readable): Promise<{ bytes: number; error: unknown }> {
  let bytes = 0;
  try {
    for await (const chunk of stream) bytes += (chunk as Buffer).length;
  } catch (error) {
    return { bytes, error };
  }
  return { bytes, error: undefined };
}

/** A plain server answering every request with `respond`. */
export function startServer(
  respond: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Listening> {
  return listenOnFreePort(createServer(respond));
}
