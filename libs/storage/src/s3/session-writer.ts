import type { Readable } from 'node:stream';
import type { S3Bucket } from './bucket.js';
import { ByteSource } from './byte-source.js';
import {
  evenRanges,
  fixedRanges,
  MAX_PART_SIZE,
  MAX_PARTS,
  MIN_PART_SIZE,
  type Range,
  rangeSize,
} from './parts.js';
import type { PartRecord, SessionKeys, StagedObject, UploadState } from './upload-state.js';

/** How non-final parts are sized (`multipart_part_size`, `multipart_uniform_parts`). */
export interface PartPolicy {
  readonly partSize: number;
  readonly uniform: boolean;
}

/** A scratch multipart upload in which 5 MiB sub-parts are coalesced, server-side, into one part. */
interface Scratch {
  readonly key: string;
  readonly uploadId: string;
  readonly parts: PartRecord[];
  size: number;
}

/**
 * One change to an upload session: an append, or sealing the session into a
 * single object. It builds the next state while remembering what it created
 * (removed if the change fails, so a failed append leaves the session as it
 * was) and what the next state no longer needs (removed once that state is
 * saved).
 */
export class SessionChange {
  #multipart: { uploadId: string; parts: PartRecord[] } | undefined;
  #tail: StagedObject | undefined;
  #staged: number;
  readonly #createdObjects = new Set<string>();
  readonly #createdUploads = new Map<string, string>();
  readonly #obsolete: string[] = [];

  constructor(
    private readonly bucket: S3Bucket,
    private readonly keys: SessionKeys,
    private readonly policy: PartPolicy,
    state: UploadState,
  ) {
    this.#multipart = state.multipart && {
      uploadId: state.multipart.uploadId,
      parts: [...state.multipart.parts],
    };
    this.#tail = state.tail;
    this.#staged = state.staged;
  }

  get state(): UploadState {
    return { multipart: this.#multipart, tail: this.#tail, staged: this.#staged };
  }

  /** Objects the new state no longer references; delete them after saving it. */
  get obsolete(): readonly string[] {
    return this.#obsolete;
  }

  /**
   * Appends a body of known length: streamed straight into parts (or into a
   * new tail object when the session is still below 5 MiB), never buffered.
   */
  async appendKnownLength(body: Readable, length: number): Promise<void> {
    if (length === 0) {
      // Read to its end all the same: the length check sits in the stream.
      await new ByteSource(body).atEnd();
      return;
    }
    let lead = this.#tail && { key: this.#tail.key, start: 0, size: this.#tail.size };
    this.#dropTail();
    // Whole parts of what is already staged move server-side; only a remainder below one part streams again.
    const copyable = lead ? this.#copyablePrefix(lead.size) : 0;
    if (lead && copyable > 0) {
      await this.#copyIntoParts(lead.key, lead.start, copyable);
      lead = { key: lead.key, start: copyable, size: lead.size - copyable };
    }
    const leadStream =
      lead && lead.size > 0
        ? await this.#read(lead.key, { start: lead.start, end: lead.start + lead.size - 1 })
        : undefined;
    const source = new ByteSource(...(leadStream ? [leadStream] : []), body);
    const total = (leadStream ? lead!.size : 0) + length;
    try {
      const partSizes = this.#streamedPartSizes(total);
      for (const size of partSizes) await this.#uploadStreamedPart(source.take(size), size);
      const rest = total - partSizes.reduce((sum, size) => sum + size, 0);
      if (rest > 0) this.#tail = await this.#stage({ stream: source.take(rest), length: rest }, rest);
    } catch (error) {
      throw source.failure ?? error;
    } finally {
      source.close();
    }
  }

  /**
   * Appends a body of unknown length (a chunked PATCH). Returns the bytes
   * appended. With parts above 5 MiB in non-uniform mode the body is cut into
   * 5 MiB sub-parts coalesced server-side into parts; otherwise into parts of
   * exactly the part size. Either way one buffer of that size is the memory
   * it takes.
   */
  async appendStream(body: Readable): Promise<number> {
    const source = new ByteSource(body);
    try {
      if (await source.atEnd()) return 0;
      if (!this.policy.uniform && this.policy.partSize > MIN_PART_SIZE) await this.#appendCoalesced(source);
      else await this.#appendInFixedParts(source);
      return source.consumed;
    } catch (error) {
      throw source.failure ?? error;
    } finally {
      source.close();
    }
  }

  /**
   * Makes the session one object (`…/data`): completes the multipart upload
   * with the tail as its last part. Needed to read the bytes back, and to
   * commit them.
   */
  async seal(): Promise<void> {
    const multipart = this.#multipart;
    if (!multipart) return;
    const tail = this.#tail;
    if (tail) {
      // A final part may be of any size; a tail is always below the 5 GiB part limit.
      this.#addPart(
        await this.bucket.uploadPartCopy(this.keys.data, multipart.uploadId, this.#nextPart(), tail.key),
        tail.size,
      );
      this.#dropTail();
    }
    await this.bucket.completeMultipartUpload(this.keys.data, multipart.uploadId, multipart.parts);
    this.#createdUploads.delete(this.keys.data);
    const size = multipart.parts.reduce((sum, part) => sum + part.size, 0);
    this.#multipart = undefined;
    this.#tail = { key: this.keys.data, size };
  }

  /** Removes what this change created; for a change that failed. Best effort: what remains is garbage scrub finds. */
  async rollback(): Promise<boolean> {
    let clean = true;
    for (const [key, uploadId] of this.#createdUploads) {
      await this.bucket.abortMultipartUpload(key, uploadId).catch(() => {
        clean = false;
      });
    }
    await this.bucket.deleteMany([...this.#createdObjects]).catch(() => {
      clean = false;
    });
    return clean;
  }

  /** Non-uniform parts when the body's length is known: the whole run as one part (split at 5 GiB), if it reaches 5 MiB. */
  #streamedPartSizes(total: number): number[] {
    if (this.policy.uniform)
      return fixedRanges(0, total - (total % this.policy.partSize), this.policy.partSize).map(rangeSize);
    return total < MIN_PART_SIZE ? [] : evenRanges(0, total, MAX_PART_SIZE).map(rangeSize);
  }

  /** How much of a staged run of `size` bytes can become parts by server-side copy. */
  #copyablePrefix(size: number): number {
    if (this.policy.uniform) return size - (size % this.policy.partSize);
    return size >= MIN_PART_SIZE ? size : 0;
  }

  /** Parts of exactly the part size, from a buffer of that size (uniform mode, or 5 MiB parts). */
  async #appendInFixedParts(source: ByteSource): Promise<void> {
    const size = this.policy.partSize;
    const buffer = Buffer.allocUnsafe(size);
    let filled = await this.#takeTail(buffer, size);
    for (;;) {
      filled = await source.fill(buffer, filled);
      if (filled < size) break;
      this.#addPart(
        await this.bucket.uploadPart(this.keys.data, await this.#uploadId(), this.#nextPart(), buffer),
        size,
      );
      filled = 0;
    }
    if (filled > 0) this.#tail = await this.#stage(buffer.subarray(0, filled), filled);
  }

  /**
   * Non-uniform chunked append: 5 MiB sub-parts go into a scratch multipart
   * upload; once it holds a part's worth it is completed and copied
   * (UploadPartCopy) into the session's upload as one part. What is left at
   * the end becomes the tail: the completed scratch upload, or the buffer.
   */
  async #appendCoalesced(source: ByteSource): Promise<void> {
    const buffer = Buffer.allocUnsafe(MIN_PART_SIZE);
    let scratch: Scratch | undefined;
    let filled = 0;
    const tail = this.#tail;
    if (tail && tail.size >= this.policy.partSize) {
      await this.#copyIntoParts(tail.key, 0, tail.size);
      this.#dropTail();
    } else if (tail && tail.size >= MIN_PART_SIZE) {
      scratch = await this.#openScratch();
      const etag = await this.bucket.uploadPartCopy(scratch.key, scratch.uploadId, 1, tail.key);
      scratch.parts.push({ number: 1, etag, size: tail.size });
      scratch.size = tail.size;
      this.#dropTail();
    } else {
      filled = await this.#takeTail(buffer, MIN_PART_SIZE);
    }
    for (;;) {
      filled = await source.fill(buffer, filled);
      if (filled < MIN_PART_SIZE) break;
      scratch ??= await this.#openScratch();
      await this.#addScratchPart(scratch, buffer);
      filled = 0;
      if (scratch.size >= this.policy.partSize) {
        await this.#completeScratch(scratch);
        this.#addPart(
          await this.bucket.uploadPartCopy(
            this.keys.data,
            await this.#uploadId(),
            this.#nextPart(),
            scratch.key,
          ),
          scratch.size,
        );
        // Not referenced by any state: gone at once, so a long append does not double the bucket's usage.
        await this.bucket.delete(scratch.key);
        this.#createdObjects.delete(scratch.key);
        scratch = undefined;
      }
    }
    if (scratch) {
      if (filled > 0) await this.#addScratchPart(scratch, buffer.subarray(0, filled));
      await this.#completeScratch(scratch);
      this.#tail = { key: scratch.key, size: scratch.size };
    } else if (filled > 0) {
      this.#tail = await this.#stage(buffer.subarray(0, filled), filled);
    }
  }

  /**
   * Starts a fixed-part append from the tail: whole parts of it are copied
   * server-side, the rest (less than a part) is read into `buffer`. Returns
   * how much of the buffer it filled.
   */
  async #takeTail(buffer: Buffer, partSize: number): Promise<number> {
    const tail = this.#tail;
    if (!tail) return 0;
    this.#dropTail();
    const copyable = this.#copyablePrefix(tail.size);
    if (copyable > 0) await this.#copyIntoParts(tail.key, 0, copyable);
    const rest = tail.size - copyable;
    if (rest === 0) return 0;
    if (rest > partSize) throw new Error(`staged object ${tail.key} does not fit one part`);
    const source = new ByteSource(await this.#read(tail.key, { start: copyable, end: tail.size - 1 }));
    try {
      const filled = await source.fill(buffer, 0);
      if (filled !== rest) throw new Error(`staged object ${tail.key} is shorter than recorded`);
      return filled;
    } finally {
      source.close();
    }
  }

  /** Copies `length` bytes of an object from `start` into parts: exactly part-sized (uniform) or as few as 5 GiB allows. */
  async #copyIntoParts(key: string, start: number, length: number): Promise<void> {
    const ranges: Range[] = this.policy.uniform
      ? fixedRanges(start, length, this.policy.partSize)
      : evenRanges(start, length, MAX_PART_SIZE);
    for (const range of ranges) {
      const etag = await this.bucket.uploadPartCopy(
        this.keys.data,
        await this.#uploadId(),
        this.#nextPart(),
        key,
        range,
      );
      this.#addPart(etag, rangeSize(range));
    }
  }

  async #uploadStreamedPart(stream: Readable, size: number): Promise<void> {
    const etag = await this.bucket.uploadPart(this.keys.data, await this.#uploadId(), this.#nextPart(), {
      stream,
      length: size,
    });
    this.#addPart(etag, size);
  }

  #addPart(etag: string, size: number): void {
    const parts = this.#multipart!.parts;
    parts.push({ number: parts.length + 1, etag, size });
  }

  #nextPart(): number {
    const next = (this.#multipart?.parts.length ?? 0) + 1;
    if (next > MAX_PARTS) {
      throw new Error(`upload needs more than ${MAX_PARTS} parts: raise multipart_part_size`);
    }
    return next;
  }

  /** The session's multipart upload, created on first need. */
  async #uploadId(): Promise<string> {
    if (!this.#multipart) {
      const uploadId = await this.bucket.createMultipartUpload(this.keys.data);
      this.#createdUploads.set(this.keys.data, uploadId);
      this.#multipart = { uploadId, parts: [] };
    }
    return this.#multipart.uploadId;
  }

  async #openScratch(): Promise<Scratch> {
    const key = this.#newStagedKey();
    const uploadId = await this.bucket.createMultipartUpload(key);
    this.#createdUploads.set(key, uploadId);
    return { key, uploadId, parts: [], size: 0 };
  }

  async #addScratchPart(scratch: Scratch, bytes: Buffer): Promise<void> {
    const number = scratch.parts.length + 1;
    const etag = await this.bucket.uploadPart(scratch.key, scratch.uploadId, number, bytes);
    scratch.parts.push({ number, etag, size: bytes.length });
    scratch.size += bytes.length;
  }

  async #completeScratch(scratch: Scratch): Promise<void> {
    await this.bucket.completeMultipartUpload(scratch.key, scratch.uploadId, scratch.parts);
    this.#createdUploads.delete(scratch.key);
    this.#createdObjects.add(scratch.key);
  }

  /** Writes bytes to a new staged object. */
  async #stage(body: Buffer | { stream: Readable; length: number }, size: number): Promise<StagedObject> {
    const key = this.#newStagedKey();
    this.#createdObjects.add(key);
    await this.bucket.put(key, body);
    return { key, size };
  }

  #newStagedKey(): string {
    this.#staged += 1;
    return this.keys.staged(`s${this.#staged}`);
  }

  async #read(key: string, range: Range): Promise<Readable> {
    const stream = await this.bucket.getStream(key, range);
    if (!stream) throw new Error(`staged object ${key} of the upload session is missing`);
    return stream;
  }

  /** The tail is consumed: the next state will not reference it (if this change fails, the old state still does). */
  #dropTail(): void {
    if (this.#tail) this.#obsolete.push(this.#tail.key);
    this.#tail = undefined;
  }
}
