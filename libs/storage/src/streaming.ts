import { Readable, Transform, type Writable } from 'node:stream';
import { type BlobCopy, BodyLengthError } from './types.js';

/**
 * Size of the chunks blob bytes move in (read streams, write buffering). Large
 * chunks mean fewer syscalls and event-loop turns per gigabyte; 1 MiB matches
 * the streaming frame the configuration reference promises per upload.
 */
export const STREAM_CHUNK_BYTES = 1024 * 1024;

/**
 * Bodies whose chunks nothing but their consumer holds, each chunk in a buffer of its own: a
 * request body as Node's HTTP parser delivers it (it copies every chunk into a new buffer). Not an
 * upstream's response, which the pull-through cache streams to the client and into storage at once.
 */
const unsharedChunkBodies = new WeakSet<Readable>();

/**
 * Says that nothing but the consumer of `body` holds its chunks, so that a store may free each one
 * as soon as it is written (releaseChunksOnceWritten). Returns `body`.
 */
export function markChunksUnshared<T extends Readable>(body: T): T {
  unsharedChunkBodies.add(body);
  return body;
}

/** Whether `body` was marked with markChunksUnshared. */
export function chunksUnshared(body: Readable): boolean {
  return unsharedChunkBodies.has(body);
}

/**
 * Marks `derived`, a stream that passes on `body`'s own chunks (a check, a hash on the way), as
 * `body` is marked. Returns `derived`.
 */
export function passesChunksOf<T extends Readable>(body: Readable, derived: T): T {
  if (chunksUnshared(body)) unsharedChunkBodies.add(derived);
  return derived;
}

/**
 * Makes `sink` free each chunk it is given once the chunk is written (its write callback) instead
 * of when the garbage collector finds it: the chunk's buffer is detached, which returns its memory
 * at once. Left to the collector, a gigabyte pushed leaves a gigabyte of dead buffers, V8 starts a
 * full collection for every ~64 MiB of them (a third of a 1 GiB push's user CPU went to that), and
 * the allocator's arenas stay grown to the peak after the load (bench/results/serving-threads.md).
 * Only for the chunks of a body marked with markChunksUnshared; a chunk that is a view into a
 * larger buffer is left alone.
 */
export function releaseChunksOnceWritten(sink: Writable): void {
  const write = sink._write.bind(sink);
  sink._write = (chunk: unknown, encoding, callback) =>
    write(chunk, encoding, (error) => {
      if (!error) releaseChunk(chunk);
      callback(error);
    });
  const writev = sink._writev?.bind(sink);
  if (writev === undefined) return;
  sink._writev = (chunks, callback) =>
    writev(chunks, (error) => {
      if (!error) for (const { chunk } of chunks) releaseChunk(chunk);
      callback(error);
    });
}

/** ES2024's ArrayBuffer.prototype.transfer, which this project's TypeScript library predates. */
type Transferable = ArrayBuffer & { transfer(length: number): ArrayBuffer };

/**
 * Frees `chunk`'s memory now, if it is a buffer of its own (not a view into a larger one), by
 * detaching its ArrayBuffer: every other view of it becomes empty. Only for a chunk that nothing
 * else holds any more.
 */
export function releaseChunk(chunk: unknown): void {
  if (!(chunk instanceof Uint8Array)) return;
  const { buffer } = chunk;
  if (!(buffer instanceof ArrayBuffer) || chunk.byteOffset !== 0 || chunk.byteLength !== buffer.byteLength)
    return;
  (buffer as Transferable).transfer(0);
}

/**
 * `body`, failing with BodyLengthError as soon as it delivers more than
 * `length` bytes, or when it ends short of them. A backend that declared the
 * length to its server (S3 UploadPart) must see the failure before the body
 * ends, or the request would wait for bytes that never come.
 */
export function withExactLength(body: Readable, length: number): Readable {
  return passesChunksOf(body, Readable.from(checkedChunks(body, length), { objectMode: false }));
}

async function* checkedChunks(body: Readable, length: number): AsyncGenerator<Buffer> {
  let received = 0;
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    received += bytes.length;
    if (received > length) throw new BodyLengthError(length, received);
    yield bytes;
  }
  if (received !== length) throw new BodyLengthError(length, received);
}

/**
 * A BlobCopy as a Readable, for consumers that are not a socket. `copyTo` reuses its few read
 * buffers as soon as the destination's write callback fires, which a socket does once the kernel
 * has the bytes, but an in-memory stream (a PassThrough, a generator, a response queued behind a
 * slow client) does while it still holds the chunk: each chunk is therefore copied out first.
 * The copy is released when it ends, fails, or the stream is destroyed.
 */
export function blobCopyStream(copy: BlobCopy): Readable {
  const out = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      done(null, Buffer.from(chunk));
    },
  });
  copy
    .copyTo(out)
    .then(
      () => out.end(),
      (error: unknown) => out.destroy(error as Error),
    )
    .finally(() => void copy.close());
  return out;
}
