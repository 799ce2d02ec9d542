import { Readable } from 'node:stream';

/**
 * Pulls bytes from a chain of streams in the amounts the multipart writer
 * needs: exact-length slices to stream into parts, or fills of a reusable
 * buffer. Reads only as far as asked (backpressure reaches the client), and
 * hands out views of the chunks it received instead of copying them.
 */
export class ByteSource {
  readonly #sources: readonly Readable[];
  readonly #chunks: AsyncIterator<Buffer | string>;
  #held: Buffer | undefined;
  #done = false;
  /** Bytes handed out so far. */
  consumed = 0;
  /**
   * Why a source failed (a client that went away, a body longer or shorter
   * than declared). An S3 call that was streaming it fails too, with a less
   * telling error: callers report this one instead.
   */
  failure: unknown;

  constructor(...sources: Readable[]) {
    this.#sources = sources;
    this.#chunks = chain(sources)[Symbol.asyncIterator]();
  }

  /** True when no byte is left (waits for the next chunk to know). */
  async atEnd(): Promise<boolean> {
    return (await this.#peek()) === undefined;
  }

  /** At most `max` bytes (at least one), or undefined at the end. */
  async read(max: number): Promise<Buffer | undefined> {
    const held = await this.#peek();
    if (held === undefined) return undefined;
    const bytes = held.length <= max ? held : held.subarray(0, max);
    this.#held = held.length <= max ? undefined : held.subarray(max);
    this.consumed += bytes.length;
    return bytes;
  }

  /** Copies into `target` from `filled` on until it is full or the bytes end; returns how full it is. */
  async fill(target: Buffer, filled: number): Promise<number> {
    let at = filled;
    while (at < target.length) {
      const bytes = await this.read(target.length - at);
      if (bytes === undefined) break;
      bytes.copy(target, at);
      at += bytes.length;
    }
    return at;
  }

  /**
   * A stream of exactly the next `length` bytes, for a request that declared
   * that length; it fails (and so does the request) if the bytes end first.
   */
  take(length: number): Readable {
    const source = this;
    return Readable.from(
      (async function* () {
        let left = length;
        while (left > 0) {
          const bytes = await source.read(left);
          if (bytes === undefined) throw new Error(`body ended ${left} bytes short of a ${length}-byte part`);
          left -= bytes.length;
          yield bytes;
        }
      })(),
      { objectMode: false },
    );
  }

  /**
   * Stops reading and releases the underlying streams (an S3 response not
   * read to its end would otherwise hold its connection).
   */
  close(): void {
    this.#done = true;
    this.#held = undefined;
    for (const source of this.#sources) if (!source.readableEnded) source.destroy();
  }

  async #peek(): Promise<Buffer | undefined> {
    while (this.#held === undefined || this.#held.length === 0) {
      if (this.#done) return undefined;
      let next: IteratorResult<Buffer | string>;
      try {
        next = await this.#chunks.next();
      } catch (error) {
        this.failure ??= error;
        this.#done = true;
        throw error;
      }
      if (next.done) {
        this.#done = true;
        return undefined;
      }
      this.#held = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    }
    return this.#held;
  }
}

async function* chain(sources: readonly Readable[]): AsyncGenerator<Buffer | string> {
  for (const source of sources) yield* source;
}
