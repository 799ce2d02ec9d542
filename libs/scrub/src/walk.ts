import { ALGORITHMS, type Algorithm, type DigestParts } from '@angos/oci';
import { MANIFEST_READ_LIMIT, readWhole } from '@angos/registry';
import { isTempName, keyFor, type MetadataStore, NotFoundError } from '@angos/storage';
import type { ScrubContext } from './types.js';

/** The directories a namespace keeps its state in; a directory holding one of them is a namespace. */
export const NAMESPACE_DIRS: ReadonlySet<string> = new Set(['_manifests', '_layers', '_uploads']);

const LOWER_HEX = /^[0-9a-f]+$/;
/** Hex lengths of the digests Angos stores. */
const HEX_LENGTH: Readonly<Record<Algorithm, number>> = { sha256: 64, sha512: 128 };

/** `<alg>`/`<hex>` as a digest, or undefined when they name none (a stray entry). */
export function digestFrom(algorithm: string, hex: string): DigestParts | undefined {
  if (!(ALGORITHMS as readonly string[]).includes(algorithm)) return undefined;
  const alg = algorithm as Algorithm;
  return LOWER_HEX.test(hex) && hex.length === HEX_LENGTH[alg] ? { algorithm: alg, hex } : undefined;
}

export function isAlgorithm(name: string): name is Algorithm {
  return (ALGORITHMS as readonly string[]).includes(name);
}

/** Lists a directory of the metadata store (or `store`) and counts its entries as walked. */
export async function list(
  ctx: ScrubContext,
  prefix: string,
  store: MetadataStore = ctx.metadata,
): Promise<string[]> {
  const names = (await store.list(prefix)).filter((name) => !isTempName(name));
  ctx.walked(names.length);
  return names;
}

/**
 * Every namespace of the metadata store (or `store`), depth first, in code-point order: each
 * directory below the top level that holds a `_…` entry, whether or not it holds a manifest (a
 * namespace with only uploads or grants still has state to check). Top-level `_…` directories
 * are the layout's own (`_blobs`, `_jobs`…) and never namespaces.
 */
export async function* namespaces(
  ctx: ScrubContext,
  store: MetadataStore = ctx.metadata,
  prefix = '',
): AsyncIterable<string> {
  const children = await list(ctx, prefix, store);
  // Namespace components never start with `_`: below the top level, a `_…` child is the state of
  // a namespace (known or not: `--manifests` quarantines the unknown ones).
  if (prefix !== '' && children.some((child) => child.startsWith('_'))) yield prefix;
  for (const child of children) {
    if (child.startsWith('_') || child.startsWith('.')) continue;
    yield* namespaces(ctx, store, prefix === '' ? child : `${prefix}/${child}`);
  }
}

/** The digests of a namespace's revision directories, and the entries that name no digest. */
export async function* revisionDirs(
  ctx: ScrubContext,
  namespace: string,
): AsyncIterable<{ digest: DigestParts } | { stray: string }> {
  const root = keyFor({ kind: 'revisionsRoot', namespace });
  for (const algorithm of await list(ctx, root)) {
    if (!isAlgorithm(algorithm)) {
      yield { stray: `${root}/${algorithm}` };
      continue;
    }
    for (const hex of await list(ctx, keyFor({ kind: 'revisionLinks', namespace, algorithm }))) {
      const digest = digestFrom(algorithm, hex);
      yield digest ? { digest } : { stray: `${root}/${algorithm}/${hex}` };
    }
  }
}

/** A value of the metadata store, or undefined when there is none. `fresh` reads past caches. */
export async function getValue(
  ctx: ScrubContext,
  path: string,
  options: { fresh?: boolean } = {},
): Promise<Buffer | undefined> {
  try {
    const { metadata } = ctx;
    return options.fresh && metadata.getUncached
      ? await metadata.getUncached(path)
      : await metadata.get(path);
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/** Whether the blob's bytes are in the blob store. */
export async function blobExists(ctx: ScrubContext, digest: DigestParts): Promise<boolean> {
  try {
    await ctx.blobs.statBlob(digest);
    return true;
  } catch (error) {
    if (error instanceof NotFoundError) return false;
    throw error;
  }
}

/**
 * A manifest's bytes, or undefined when they are gone or longer than a manifest can be
 * (MANIFEST_READ_LIMIT; `--blobs` re-hashes such a file as a stream): every caller then repairs
 * nothing from them.
 */
export async function readManifestBytes(ctx: ScrubContext, digest: DigestParts): Promise<Buffer | undefined> {
  try {
    return await readWhole(await ctx.blobs.readBlob(digest), MANIFEST_READ_LIMIT);
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}
