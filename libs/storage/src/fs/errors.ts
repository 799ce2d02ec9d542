import { StorageError } from '../types.js';

/** The errno code of a Node fs error (`ENOENT`…), or undefined for anything else. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** The path is absent, or a component of it is a file rather than a directory. */
export function isMissing(error: unknown): boolean {
  const code = errnoCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Errors that say the filesystem under the store cannot serve now, not that the request or the
 * code is wrong: full (ENOSPC, EDQUOT, EFBIG), out of descriptors or memory (EMFILE, ENFILE,
 * ENOMEM, ENOBUFS), failing or gone (EIO, ESTALE and ETIMEDOUT on NFS, EBUSY), or refusing writes
 * (EROFS, and EACCES/EPERM: a mount or permissions changed under the store). The S3 driver's
 * counterparts (throttling, 5xx, bad credentials) are StorageErrors too.
 */
const RESOURCE_ERRORS: ReadonlySet<string> = new Set([
  'ENOSPC',
  'EDQUOT',
  'EFBIG',
  'EMFILE',
  'ENFILE',
  'ENOMEM',
  'ENOBUFS',
  'EIO',
  'ESTALE',
  'ETIMEDOUT',
  'EBUSY',
  'EROFS',
  'EACCES',
  'EPERM',
]);

/**
 * Runs one store operation and turns a resource error into a transient StorageError naming the
 * operation and key, which the HTTP edge answers 503 UNAVAILABLE and logs once. Anything else
 * (NotFoundError, a caller's mistake, a bug) passes unchanged. The operations themselves clean up
 * what they started (temp files, descriptors) before their error reaches here.
 */
export async function asStorageFailure<T>(operation: string, key: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw toStorageError(error, operation, key);
  }
}

/** `error` as a StorageError when it is a resource error, else `error` itself. */
export function toStorageError(error: unknown, operation: string, key: string): unknown {
  const code = errnoCode(error);
  if (code === undefined || !RESOURCE_ERRORS.has(code) || error instanceof StorageError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StorageError(
    `fs ${operation} failed on "${key}": ${message}`,
    { backend: 'fs', operation, key, code },
    { cause: error },
  );
}
