import type { S3Bucket } from './bucket.js';
import { fixedRanges, MAX_COPY_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE } from './parts.js';

/** `multipart_copy_threshold`, `multipart_copy_chunk_size`, `multipart_copy_jobs`. */
export interface CopySettings {
  readonly threshold: number;
  readonly chunkSize: number;
  readonly jobs: number;
}

/**
 * Server-side copy of an object of `size` bytes: one CopyObject up to the
 * threshold (and S3's 5 GB CopyObject limit), above it a multipart copy in
 * `chunkSize` parts, `jobs` of them in flight. The target appears whole or not
 * at all: an unfinished multipart copy is aborted.
 */
export async function copyObject(
  bucket: S3Bucket,
  source: string,
  target: string,
  size: number,
  settings: CopySettings,
): Promise<void> {
  if (size <= Math.min(settings.threshold, MAX_COPY_OBJECT_SIZE)) {
    await bucket.copyObject(source, target);
    return;
  }
  // More parts than S3 allows would be needed: larger (but still valid) parts instead.
  const chunkSize = Math.min(
    MAX_PART_SIZE,
    Math.max(settings.chunkSize, MIN_PART_SIZE, Math.ceil(size / MAX_PARTS)),
  );
  const ranges = fixedRanges(0, size, chunkSize);
  const uploadId = await bucket.createMultipartUpload(target);
  try {
    const etags: string[] = new Array(ranges.length);
    let next = 0;
    const job = async () => {
      while (next < ranges.length) {
        const index = next++;
        try {
          etags[index] = await bucket.uploadPartCopy(target, uploadId, index + 1, source, ranges[index]);
        } catch (error) {
          next = ranges.length; // the other jobs stop after their current part
          throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(settings.jobs, ranges.length) }, job));
    await bucket.completeMultipartUpload(
      target,
      uploadId,
      etags.map((etag, index) => ({ number: index + 1, etag })),
    );
  } catch (error) {
    await bucket.abortMultipartUpload(target, uploadId).catch(() => undefined);
    throw error;
  }
}
