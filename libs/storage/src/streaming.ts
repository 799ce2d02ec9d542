import { Readable, Transform } from 'node:stream';
import { type BlobCopy, BodyLengthError } from './types.js';

/**
 * Size of the chunks blob bytes move in (read streams, write buffering). Large
 * chunks mean fewer syscalls and event-loop turns per gigabyte; 1 MiB matches
 * the streaming frame the configuration reference promises per upload.
 */
export const STREAM_CHUNK_BYTES = 1024 * 1024;

/**
 * `body`, failing with BodyLengthError as soon as it delivers more than
 * `length` bytes, or when it ends short of them. A backend that declared the
 * length to its server (S3 UploadPart) must see the failure before the body
 * ends, or the request would wait for bytes that never come.
 */
export function withExactLength(body: Readable, length: number): Readable {
  return Readable.from(checkedChunks(body, length), { objectMode: false });
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
