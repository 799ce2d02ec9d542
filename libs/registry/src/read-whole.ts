import type { Readable } from 'node:stream';

/**
 * A stream's bytes read whole, for what is small (a manifest, a small blob kept in memory), or
 * undefined once more than `maxBytes` arrive, and the stream is destroyed: bytes that were meant
 * to be small (a size read before, a corrupt file that is not) never fill memory.
 */
export async function readWhole(stream: Readable, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    length += (chunk as Buffer).length;
    if (length > maxBytes) {
      stream.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, length);
}
