import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BlobFill, FILL_HEAD_BYTES, FOLLOWER_BUFFER_BYTES } from '../src/cache/blob-fill.js';
import type { BlobBytes } from '../src/cache/types.js';

/** A blob of `size` bytes whose byte i is i mod 251, so any slice is recognisable. */
function blobOf(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = i % 251;
  return bytes;
}

/** A fill over an in-memory "storage" that holds `blob` once `commit` ran. */
function fillOf(blob: Buffer) {
  let committed = false;
  const fill = new BlobFill(async (start, end) => {
    if (!committed) throw new Error('read from storage before the commit');
    const bytes = blob.subarray(start, (end ?? blob.length - 1) + 1);
    return {
      copyTo: (destination: Writable) =>
        new Promise<void>((resolve, reject) => destination.write(bytes, (e) => (e ? reject(e) : resolve()))),
      close: async () => {},
    };
  });
  const tap = fill.tap();
  tap.resume();
  return {
    fill,
    write: (from: number, to: number) =>
      new Promise<void>((resolve, reject) =>
        tap.write(blob.subarray(from, to), (error) => (error ? reject(error) : resolve())),
      ),
    commit() {
      committed = true;
      fill.stored();
    },
  };
}

/** Copies a follower into memory; `received` sees each chunk as it arrives. */
async function readAll(bytes: BlobBytes, received: Buffer[] = []): Promise<Buffer> {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      received.push(Buffer.from(chunk));
      callback();
    },
  });
  try {
    await bytes.copyTo(sink);
  } finally {
    await bytes.close();
  }
  return Buffer.concat(received);
}

describe('BlobFill', () => {
  it('streams to followers as bytes pass, and ends the whole blob only at the commit', async () => {
    const blob = blobOf(1000);
    const { fill, write, commit } = fillOf(blob);
    fill.begin(blob.length);
    const whole = fill.follow(undefined);
    const part = fill.follow({ start: 100, end: 199 });
    const wholeRead = readAll(whole);
    await write(0, 300);
    await write(300, 1000);
    // The range has all its bytes: it ends without waiting for the commit.
    expect((await readAll(part)).equals(blob.subarray(100, 200))).toBe(true);
    let ended = false;
    void wholeRead.then(() => {
      ended = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(ended).toBe(false);
    commit();
    expect((await wholeRead).equals(blob)).toBe(true);
  });

  it('streams to a client joining within the first FILL_HEAD_BYTES from the fill, before the commit', async () => {
    const size = FILL_HEAD_BYTES * 2;
    const blob = blobOf(size);
    const { fill, write, commit } = fillOf(blob);
    fill.begin(size);
    const first = readAll(fill.follow(undefined));
    await write(0, 1024);
    await write(1024, 300_000);
    await write(300_000, 310_000); // each chunk passes on when the next arrives
    // Join after 300,000 bytes passed: those come from the head, the rest as it arrives.
    const late = fill.follow(undefined);
    const lateRange = fill.follow({ start: 200_000, end: 400_000 });
    for (let at = 310_000; at < size; at += 1024 * 1024) await write(at, Math.min(size, at + 1024 * 1024));
    // Every byte of the range has passed: it ends with no commit, so not through storage.
    expect((await readAll(lateRange)).equals(blob.subarray(200_000, 400_001))).toBe(true);
    commit();
    expect((await readAll(late)).equals(blob)).toBe(true);
    expect((await first).equals(blob)).toBe(true);
  });

  it('sends a client joining past the head, and one that falls too far behind, to storage after the commit', async () => {
    const size = FOLLOWER_BUFFER_BYTES * 2;
    const blob = blobOf(size);
    const { fill, write, commit } = fillOf(blob);
    fill.begin(size);
    const laggard = fill.follow(undefined); // never read until the commit
    await write(0, FILL_HEAD_BYTES + 1024);
    const late = fill.follow(undefined);
    for (let at = FILL_HEAD_BYTES + 1024; at < size; at += 1024 * 1024) {
      await write(at, Math.min(size, at + 1024 * 1024));
    }
    commit();
    expect((await readAll(late)).equals(blob)).toBe(true);
    expect((await readAll(laggard)).equals(blob)).toBe(true);
  });

  it('fails every follower when the fill fails, without handing on the last chunk', async () => {
    const blob = blobOf(100);
    const { fill, write } = fillOf(blob);
    fill.begin(blob.length);
    const follower = fill.follow(undefined);
    const received: Buffer[] = [];
    const reading = readAll(follower, received);
    await write(0, 50);
    await write(50, 100);
    fill.failed(new Error('digest mismatch'));
    await expect(reading).rejects.toThrow('digest mismatch');
    expect(Buffer.concat(received).length).toBeLessThan(100);
  });
});
