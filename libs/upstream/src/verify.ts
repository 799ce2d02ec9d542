import { Transform, type TransformCallback } from 'node:stream';
import { createDigester, type Digester, type DigestParts, digestsEqual, formatDigest } from '@angos/oci';

/**
 * Passes a blob through while hashing it, and fails at the end, before the last piece is passed
 * on, when the bytes do not hash to `expected` or their count is not `expectedSize`. Holding back
 * one chunk means a consumer never sees the complete content of a bad blob: a writer that commits
 * on 'end' cannot commit one. Memory stays at one chunk whatever the blob's size.
 */
export class VerifyingStream extends Transform {
  private readonly digester: Digester;
  private held: Buffer | undefined;

  constructor(
    private readonly expected: DigestParts,
    private readonly expectedSize: number | undefined,
    private readonly mismatch: (message: string) => Error,
  ) {
    super();
    this.digester = createDigester(expected.algorithm);
  }

  /** Bytes received from the upstream so far. */
  get bytes(): number {
    return this.digester.bytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.digester.update(chunk);
    if (this.held !== undefined) this.push(this.held);
    this.held = chunk;
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedSize !== undefined && this.digester.bytes !== this.expectedSize) {
      callback(this.mismatch(`got ${this.digester.bytes} bytes of ${this.expectedSize}`));
      return;
    }
    const actual = this.digester.digest();
    if (!digestsEqual(actual, this.expected)) {
      callback(this.mismatch(`content hashes to ${formatDigest(actual)}`));
      return;
    }
    if (this.held !== undefined) this.push(this.held);
    this.held = undefined;
    callback();
  }
}
