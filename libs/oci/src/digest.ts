import { createHash, type Hash } from 'node:crypto';
import { truncateForDetail } from './detail.js';
import { OciError } from './errors.js';

/** The digest algorithms Angos computes and stores (image-spec registered algorithms). */
export type Algorithm = 'sha256' | 'sha512';

/** Structurally identical to @angos/storage's DigestParts, so values pass between them freely. */
export interface DigestParts {
  readonly algorithm: Algorithm;
  readonly hex: string;
}

export const ALGORITHMS: readonly Algorithm[] = ['sha256', 'sha512'];

/** Hex length of each algorithm's encoded part; the image-spec requires lowercase hex. */
const HEX_PATTERNS: Readonly<Record<Algorithm, RegExp>> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

/**
 * The image-spec digest grammar, for any algorithm:
 *   digest    ::= algorithm ":" encoded
 *   algorithm ::= component (separator component)*   component ::= [a-z0-9]+   separator ::= [+._-]
 *   encoded   ::= [a-zA-Z0-9=_-]+
 */
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isAlgorithm(value: string): value is Algorithm {
  return value === 'sha256' || value === 'sha512';
}

/** Strict parse of a digest Angos can verify; anything else throws OciError('DIGEST_INVALID'). */
export function parseDigest(s: string): DigestParts {
  const parts = tryParseDigest(s);
  if (parts === undefined) {
    throw new OciError('DIGEST_INVALID', { digest: typeof s === 'string' ? truncateForDetail(s) : null });
  }
  return parts;
}

export function tryParseDigest(s: string): DigestParts | undefined {
  if (typeof s !== 'string') return undefined;
  const colon = s.indexOf(':');
  if (colon < 0) return undefined;
  const algorithm = s.slice(0, colon);
  const hex = s.slice(colon + 1);
  if (!isAlgorithm(algorithm) || !HEX_PATTERNS[algorithm].test(hex)) return undefined;
  return { algorithm, hex };
}

export function formatDigest(d: DigestParts): string {
  return `${d.algorithm}:${d.hex}`;
}

/**
 * True when `s` has the shape of a digest under the spec's grammar, whatever its
 * algorithm. Used to tell a digest reference from a tag: a digest-shaped
 * reference with an algorithm Angos does not support is a bad digest, not a tag.
 */
export function isDigestString(s: string): boolean {
  return typeof s === 'string' && DIGEST_GRAMMAR.test(s);
}

export function digestsEqual(a: DigestParts, b: DigestParts): boolean {
  return a.algorithm === b.algorithm && a.hex === b.hex;
}

/** Hashes bytes as they stream past; `bytes` counts everything fed so far. */
export interface Digester {
  update(chunk: Uint8Array): void;
  /** The digest of everything fed; may be called more than once, but `update` after it throws. */
  digest(): DigestParts;
  readonly bytes: number;
}

export function createDigester(algorithm: Algorithm): Digester {
  return new NodeDigester(algorithm);
}

class NodeDigester implements Digester {
  readonly #algorithm: Algorithm;
  readonly #hash: Hash;
  #bytes = 0;
  #result: DigestParts | undefined;

  constructor(algorithm: Algorithm) {
    this.#algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  get bytes(): number {
    return this.#bytes;
  }

  update(chunk: Uint8Array): void {
    if (this.#result !== undefined) throw new Error('digester already finalized');
    this.#hash.update(chunk);
    this.#bytes += chunk.byteLength;
  }

  digest(): DigestParts {
    this.#result ??= { algorithm: this.#algorithm, hex: this.#hash.digest('hex') };
    return this.#result;
  }
}

export function digestOf(algorithm: Algorithm, data: Uint8Array): DigestParts {
  return { algorithm, hex: createHash(algorithm).update(data).digest('hex') };
}
