import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { UpstreamConfig } from '@angos/config';
import {
  type Distribution,
  type Listening,
  listenOnFreePort,
  type MkOciOptions,
  mkOci,
  OciClient,
  OciLayout,
  pushLayout,
} from '@angos/test-support';
import { UpstreamClient, type UpstreamClientOptions } from '../src/index.js';

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

export interface SeededImage {
  readonly layout: OciLayout;
  /** The tagged manifest (or index). */
  readonly digest: string;
  /** The config and layer digests of its image manifests. */
  readonly blobs: readonly string[];
  remove(): Promise<void>;
}

interface Document {
  manifests?: { digest: string }[];
  config?: { digest: string };
  layers?: { digest: string }[];
}

/** Pushes a deterministic image (mkOci) to `repository` of a distribution, under `tag`. */
export async function seedImage(
  upstream: Distribution,
  repository: string,
  tag: string,
  platforms: readonly string[] = ['linux/amd64'],
  options: MkOciOptions = {},
): Promise<SeededImage> {
  const dir = await mkdtemp(join(tmpdir(), 'angos-upstream-layout-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const digest = await mkOci(dir, tag, platforms, { seed: `${repository}-${tag}`, ...options });
    const layout = new OciLayout(dir);
    await pushLayout(
      new OciClient(upstream.url, upstream.pushHeaders(repository)),
      layout,
      repository,
      digest,
      tag,
    );
    const blobs: string[] = [];
    const walk = async (at: string) => {
      const doc = await layout.json<Document>(at);
      for (const child of doc.manifests ?? []) await walk(child.digest);
      for (const blob of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])])
        blobs.push(blob.digest);
    };
    await walk(digest);
    return { layout, digest, blobs, remove };
  } catch (error) {
    await remove();
    throw error;
  }
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

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
}

export interface TestProxy extends Listening {
  readonly seen: SeenRequest[];
}

/**
 * An HTTP proxy in front of an upstream (plain HTTP) that records every request and forwards it,
 * unless `intercept` answers it itself (returns true).
 */
export async function startProxy(
  target: string,
  intercept: (req: IncomingMessage, res: ServerResponse) => boolean = () => false,
): Promise<TestProxy> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    if (intercept(req, res)) return;
    const forward = request(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: { ...req.headers, host: new URL(target).host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  const listening = await listenOnFreePort(server);
  return { ...listening, seen };
}

/** A plain server answering every request with `respond`. */
export function startServer(
  respond: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Listening> {
  return listenOnFreePort(createServer(respond));
}
