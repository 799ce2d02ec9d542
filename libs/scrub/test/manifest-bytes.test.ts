import { Readable } from 'node:stream';
import { MANIFEST_READ_LIMIT } from '@angos/registry';
import { NotFoundError } from '@angos/storage';
import { describe, expect, it } from 'vitest';
import type { ScrubContext } from '../src/types.js';
import { readManifestBytes } from '../src/walk.js';

const DIGEST = { algorithm: 'sha256', hex: 'a'.repeat(64) } as const;
const CHUNK = Buffer.alloc(1024 * 1024, 1);

/** A blob store whose one blob is `chunks` MiB long, counting what it hands out. */
function storeOf(chunks: number) {
  const served = { chunks: 0, destroyed: false };
  const blobs = {
    async readBlob() {
      let left = chunks;
      const stream = new Readable({
        read() {
          if (left-- === 0) return this.push(null);
          served.chunks += 1;
          this.push(CHUNK);
        },
        destroy(error, done) {
          served.destroyed = true;
          done(error);
        },
      });
      return stream;
    },
  };
  return { ctx: { blobs } as unknown as ScrubContext, served };
}

describe('readManifestBytes', () => {
  it('reads a manifest whole', async () => {
    const { ctx } = storeOf(3);
    expect((await readManifestBytes(ctx, DIGEST))?.length).toBe(3 * CHUNK.length);
  });

  it('never holds more than a manifest can be: a larger blob is left unread past the limit', async () => {
    const limitChunks = MANIFEST_READ_LIMIT / CHUNK.length;
    const { ctx, served } = storeOf(limitChunks * 16);
    expect(await readManifestBytes(ctx, DIGEST)).toBeUndefined();
    expect(served.destroyed).toBe(true);
    // The stream reads ahead by its buffer (16 KiB by default: one chunk here), never the rest.
    expect(served.chunks).toBeLessThanOrEqual(limitChunks + 2);
  });

  it('answers undefined when the bytes are gone', async () => {
    const ctx = {
      blobs: {
        async readBlob() {
          throw new NotFoundError('gone');
        },
      },
    } as unknown as ScrubContext;
    expect(await readManifestBytes(ctx, DIGEST)).toBeUndefined();
  });
});
