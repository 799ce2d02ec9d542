import { keyFor } from '../keys.js';

/** A part of the session's multipart upload. */
export interface PartRecord {
  readonly number: number;
  readonly etag: string;
  readonly size: number;
}

/** An object holding bytes of the session outside the multipart upload. */
export interface StagedObject {
  /** Storage key: `…/_uploads/<id>/staged/<name>`, or `…/data` once the session is sealed. */
  readonly key: string;
  readonly size: number;
}

/**
 * Where the bytes of an upload session are, persisted as JSON at
 * `<ns>/_uploads/<id>/state` so that a session survives a restart and
 * continues on any replica. In order, the session's bytes are:
 * - the parts of `multipart`, a multipart upload of `<ns>/_uploads/<id>/data`
 *   whose parts are all at least 5 MiB (S3's minimum for a non-final part);
 * - then `tail`, one object with the bytes that did not (yet) make a part.
 *
 * An update writes the new state first and deletes what the old state
 * referenced afterwards, so a crash leaves garbage, never a state pointing at
 * nothing. Parts uploaded but not yet recorded are ignored: completion lists
 * the recorded parts only.
 */
export interface UploadState {
  readonly multipart?: { readonly uploadId: string; readonly parts: readonly PartRecord[] } | undefined;
  readonly tail?: StagedObject | undefined;
  /** Counter for names of staged objects, so that no two are ever the same. */
  readonly staged: number;
}

export const EMPTY_STATE: UploadState = { staged: 0 };

export function sizeOf(state: UploadState): number {
  let size = state.tail?.size ?? 0;
  for (const part of state.multipart?.parts ?? []) size += part.size;
  return size;
}

export function encodeState(state: UploadState): string {
  return JSON.stringify(state);
}

export function decodeState(data: Buffer): UploadState {
  const json = JSON.parse(data.toString('utf8')) as UploadState;
  if (typeof json !== 'object' || json === null || typeof json.staged !== 'number') {
    throw new Error('malformed upload session state');
  }
  return json;
}

/** The keys of one session. */
export class SessionKeys {
  readonly state: string;
  readonly data: string;
  readonly staging: string;
  /** Every key of the session, for listing its leftovers (multipart uploads, staged objects). */
  readonly root: string;

  constructor(
    readonly namespace: string,
    readonly id: string,
  ) {
    this.state = keyFor({ kind: 'uploadState', namespace, id });
    this.data = keyFor({ kind: 'uploadData', namespace, id });
    this.staging = keyFor({ kind: 'uploadStaging', namespace, id });
    this.root = `${keyFor({ kind: 'upload', namespace, id })}/`;
  }

  staged(name: string): string {
    return keyFor({ kind: 'uploadStaged', namespace: this.namespace, id: this.id, name });
  }
}
