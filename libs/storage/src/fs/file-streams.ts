import { once } from 'node:events';
import {
  close,
  constants,
  createReadStream,
  createWriteStream,
  fstat,
  open,
  read,
  type WriteStream,
} from 'node:fs';
import { open as openHandle } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { chunksUnshared, releaseChunk, releaseChunksOnceWritten, STREAM_CHUNK_BYTES } from '../streaming.js';
import {
  type BlobCopy,
  BodyLengthError,
  type ByteRange,
  NotFoundError,
  OffsetMismatchError,
} from '../types.js';
import { isMissing } from './errors.js';

// Blob bytes move through plain descriptors and the callback API: FileHandle streams go through
// an extra promise per chunk and measured 10–15% slower on gigabyte pulls and pushes.
const openFd = promisify(open);
const fstatFd = promisify(fstat);
const closeFd = promisify(close);
const readFd = promisify(read);

/** Appends land at the end whatever the offset; no O_CREAT, so a missing file is ENOENT. */
const APPEND_FLAGS = constants.O_WRONLY | constants.O_APPEND;

/** Opens `path`; an absent file is a NotFoundError naming `key`. */
async function openExisting(path: string, flags: string | number, key: () => string): Promise<number> {
  try {
    return await openFd(path, flags);
  } catch (error) {
    if (isMissing(error)) throw new NotFoundError(key());
    throw error;
  }
}

/**
 * Streams a file, or an inclusive range of it. Opens before returning, so a missing file fails
 * here rather than after response headers went out. Chunks are as large as the bytes to read,
 * up to STREAM_CHUNK_BYTES: a 4 KiB config blob must not cost a 1 MiB buffer.
 */
export async function openReadStream(path: string, key: () => string, range?: ByteRange): Promise<Readable> {
  const fd = await openExisting(path, 'r', key);
  try {
    const length = range ? range.end - range.start + 1 : (await fstatFd(fd)).size;
    // The stream owns the descriptor from here and closes it on end, error or destroy.
    return createReadStream('', {
      fd,
      start: range?.start,
      end: range?.end,
      highWaterMark: Math.max(1, Math.min(STREAM_CHUNK_BYTES, length)),
    });
  } catch (error) {
    await closeFd(fd);
    throw error;
  }
}

/**
 * Appends `body` to an existing file that must be `offset` bytes long (OffsetMismatchError
 * otherwise); returns the new size. If `body` fails midway, the bytes that reached the file stay,
 * except when it belied its declared length (BodyLengthError): the file is cut back to `offset`,
 * since a chunk of the wrong length is not part of the session at all.
 * `flush` fsyncs before the descriptor is closed.
 */
export async function appendToFile(
  path: string,
  key: () => string,
  offset: number,
  body: Readable,
  flush: boolean,
): Promise<number> {
  try {
    return await appendAtSize(path, key, offset, body, flush);
  } catch (error) {
    if (error instanceof BodyLengthError) await truncateFile(path, offset, flush);
    throw error;
  }
}

/** Cuts a file back to `size`; `flush` makes the cut durable, so a crash cannot bring the bytes back. */
async function truncateFile(path: string, size: number, flush: boolean): Promise<void> {
  const handle = await openHandle(path, 'r+');
  try {
    await handle.truncate(size);
    if (flush) await handle.sync();
  } finally {
    await handle.close();
  }
}

async function appendAtSize(
  path: string,
  key: () => string,
  offset: number,
  body: Readable,
  flush: boolean,
): Promise<number> {
  const fd = await openExisting(path, APPEND_FLAGS, key);
  let sink: WriteStream | undefined;
  try {
    const { size } = await fstatFd(fd);
    if (size !== offset) throw new OffsetMismatchError(offset, size);
    // The stream owns the descriptor from here.
    sink = createWriteStream('', { fd, highWaterMark: STREAM_CHUNK_BYTES, flush });
    if (chunksUnshared(body)) releaseChunksOnceWritten(sink);
    await pipeline(body, sink);
    return size + sink.bytesWritten;
  } finally {
    if (sink === undefined) await closeFd(fd);
    // When the body fails, pipeline rejects at once, while a write may still be in flight. The
    // stream closes only after it has landed: until then the session's size is not settled.
    else if (!sink.closed) await once(sink, 'close');
  }
}

/** Buffers one copy cycles through: one being read while two are on their way to the socket. */
const COPY_BUFFERS = 3;

/**
 * Opens a file, or an inclusive range of it, for copying into a writable (BlobStore.openBlobCopy).
 * The copy reads into at most COPY_BUFFERS buffers, each reused as soon as `destination` has
 * taken its bytes (the write callback) and freed when the copy ends: no allocation per chunk,
 * nothing for the garbage collector, and at most COPY_BUFFERS chunks held for a slow client.
 */
export async function openFileCopy(path: string, key: () => string, range?: ByteRange): Promise<BlobCopy> {
  const fd = await openExisting(path, 'r', key);
  let start = 0;
  let length: number;
  try {
    if (range) {
      // An end past the file reads to its end, as readBlob does.
      start = range.start;
      length = Math.min(range.end + 1, (await fstatFd(fd)).size) - start;
    } else {
      length = (await fstatFd(fd)).size;
    }
  } catch (error) {
    await closeFd(fd);
    throw error;
  }
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= closeFd(fd);
    return closed;
  };
  return {
    close,
    async copyTo(destination) {
      try {
        await copyRange(fd, start, Math.max(0, length), destination);
      } finally {
        await close();
      }
    },
  };
}

async function copyRange(fd: number, start: number, length: number, destination: Writable): Promise<void> {
  const chunkSize = Math.max(1, Math.min(STREAM_CHUNK_BYTES, length));
  const free: Buffer[] = [];
  let allocated = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const signal = () => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const nextFree = async (): Promise<Buffer> => {
    for (;;) {
      if (failure) throw failure;
      const buffer = free.pop();
      if (buffer) return buffer;
      if (allocated < COPY_BUFFERS) {
        allocated++;
        return Buffer.allocUnsafeSlow(chunkSize);
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  };
  const onClose = () => {
    failure ??= new Error('the destination closed before the copy ended');
    signal();
  };
  destination.once('close', onClose);
  try {
    let position = start;
    let remaining = length;
    while (remaining > 0) {
      const buffer = await nextFree();
      const { bytesRead: read } = await readFd(fd, buffer, 0, Math.min(chunkSize, remaining), position);
      if (read === 0) throw new Error(`file ended ${remaining} bytes early`);
      position += read;
      remaining -= read;
      destination.write(read === buffer.length ? buffer : buffer.subarray(0, read), (error) => {
        if (error) failure ??= error;
        free.push(buffer);
        signal();
      });
    }
    // Every buffer back: the destination has taken every byte.
    while (free.length < allocated) {
      if (failure) throw failure;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    if (failure) throw failure;
  } finally {
    destination.off('close', onClose);
    // The buffers the destination has handed back are ours alone: their memory goes back now, not
    // at the next collection (64 pulls at once hold 192 MiB of them).
    for (const buffer of free) releaseChunk(buffer);
  }
}
