import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach } from 'vitest';
import type { Algorithm, DigestParts } from '../keys.js';

/** What a contract suite needs from a backend: a fresh, empty store and a way to dispose of it. */
export interface StoreUnderTest<Store> {
  readonly store: Store;
  cleanup(): Promise<void>;
}

export type StoreFactory<Store> = () => Promise<StoreUnderTest<Store>>;

/**
 * A fresh store for every test. After each test `assertClean` checks that the
 * test removed everything it wrote (so a leak in a driver's delete, or a test
 * that forgot to clean up, fails), then the backend is disposed of.
 */
export function useFreshStore<Store>(
  factory: StoreFactory<Store>,
  assertClean: (store: Store) => Promise<void>,
): () => Store {
  let current: StoreUnderTest<Store> | undefined;
  beforeEach(async () => {
    current = await factory();
  });
  afterEach(async () => {
    const underTest = current;
    current = undefined;
    if (underTest === undefined) return;
    try {
      await assertClean(underTest.store);
    } finally {
      await underTest.cleanup();
    }
  });
  return () => {
    if (current === undefined) throw new Error('the store exists only while a test runs');
    return current.store;
  };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A byte stream of the given chunks. */
export function bodyOf(...chunks: Array<string | Uint8Array>): Readable {
  return Readable.from(
    chunks.map((chunk) => Buffer.from(chunk)),
    { objectMode: false },
  );
}

/** A byte stream that pauses between chunks, so concurrent consumers get to interleave. */
export function slowBodyOf(...chunks: string[]): Readable {
  return Readable.from(
    (async function* () {
      for (const chunk of chunks) {
        await sleep(5);
        yield Buffer.from(chunk);
      }
    })(),
    { objectMode: false },
  );
}

/** A byte stream that delivers `chunks`, waits `pauseMs`, then fails with `error` (a client that hangs up). */
export function failingBodyOf(chunks: string[], error: Error, pauseMs = 0): Readable {
  return Readable.from(
    (async function* () {
      for (const chunk of chunks) yield Buffer.from(chunk);
      if (pauseMs > 0) await sleep(pauseMs);
      throw error;
    })(),
    { objectMode: false },
  );
}

export function digestOf(bytes: Uint8Array | string, algorithm: Algorithm = 'sha256'): DigestParts {
  return { algorithm, hex: createHash(algorithm).update(bytes).digest('hex') };
}

/** Hashes a stream without keeping it, and reports its largest chunk. */
export async function hashStream(
  stream: Readable,
): Promise<{ hex: string; size: number; largestChunk: number }> {
  const hash = createHash('sha256');
  let size = 0;
  let largestChunk = 0;
  for await (const chunk of stream) {
    const bytes = chunk as Buffer;
    hash.update(bytes);
    size += bytes.length;
    largestChunk = Math.max(largestChunk, bytes.length);
  }
  return { hex: hash.digest('hex'), size, largestChunk };
}

/**
 * `count` chunks of `chunkSize` bytes, chunk i filled with the byte i % 256,
 * generated one at a time as the consumer pulls: the payload never exists whole.
 * `sha256()` is the digest of everything yielded so far.
 */
export function patternBody(count: number, chunkSize: number): { body: Readable; sha256(): string } {
  const hash = createHash('sha256');
  const body = Readable.from(
    (function* () {
      for (let i = 0; i < count; i++) {
        const chunk = Buffer.alloc(chunkSize, i % 256);
        hash.update(chunk);
        yield chunk;
      }
    })(),
    { objectMode: false },
  );
  return { body, sha256: () => hash.copy().digest('hex') };
}

/**
 * Keys that no backend may accept: traversal, absolute, empty or dot segments,
 * NUL, backslash, the fs temp-file prefix, over-long segments and keys.
 */
export const INVALID_KEYS: readonly string[] = [
  '',
  '/etc/passwd',
  '..',
  '.',
  '../escape',
  'a/../../escape',
  'a/..',
  'a/./b',
  'a//b',
  'a/',
  'a\\..\\b',
  'a\0b',
  'ns/.tmp-1234',
  'x'.repeat(256),
  `${'abc/'.repeat(300)}d`,
];
