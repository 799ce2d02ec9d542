import { createMetrics } from '@angos/observability';
import { describe, expect, it } from 'vitest';
import {
  createBlobStore,
  createMetadataStore,
  instrumentBlobStore,
  instrumentMetadataStore,
  keyFor,
  keyKindOf,
  MemoryMetadataStore,
  StorageError,
} from '../src/index.js';
import { describeBlobStoreContract, describeMetadataStoreContract } from '../src/testing/contract.js';

const noCleanup = async () => {};
const metrics = () => createMetrics({ defaultMetrics: false });

// The instrumenting wrappers keep every promise of the contracts.
describeMetadataStoreContract('instrumented memory', async () => ({
  store: instrumentMetadataStore(createMetadataStore({ kind: 'memory' }), metrics()),
  cleanup: noCleanup,
}));
describeBlobStoreContract('instrumented memory', async () => ({
  store: instrumentBlobStore(createBlobStore({ kind: 'memory' }), metrics()),
  cleanup: noCleanup,
}));

/** A metadata store whose `put` fails as an unreachable backend does. */
class FailingPuts extends MemoryMetadataStore {
  override async put(): Promise<void> {
    throw new StorageError('PutObject failed', { backend: 'memory', operation: 'PutObject' });
  }
}

describe('storage operation metrics', () => {
  it('times every operation by backend and operation, and counts failures but not absent keys', async () => {
    const m = metrics();
    const store = instrumentMetadataStore(new FailingPuts(), m);
    await expect(store.get('ns/_manifests/tags/v1/link')).rejects.toThrow(/not found/);
    await expect(store.put('ns/_manifests/tags/v1/link', 'x')).rejects.toBeInstanceOf(StorageError);
    expect(await store.list('ns')).toEqual([]);

    const body = (await m.render()).body;
    expect(body).toContain('storage_operation_duration_ms_count{backend="memory",operation="get"} 1');
    expect(body).toContain('storage_operation_duration_ms_count{backend="memory",operation="put"} 1');
    expect(body).toContain('storage_operation_duration_ms_count{backend="memory",operation="list"} 1');
    expect(body).toContain('storage_operation_errors_total{backend="memory",operation="put"} 1');
    expect(body).not.toContain('storage_operation_errors_total{backend="memory",operation="get"}');
  });

  it('keeps the optional members of the store it wraps, and only those', () => {
    const memory = instrumentMetadataStore(createMetadataStore({ kind: 'memory' }), metrics());
    expect(memory.conditional).toBeDefined();
    expect(memory.putDeferred).toBeUndefined();
    const blobs = instrumentBlobStore(createBlobStore({ kind: 'memory' }), metrics());
    expect(blobs.presignBlob).toBeUndefined();
  });
});

describe('keyKindOf', () => {
  const digest = { algorithm: 'sha256' as const, hex: 'ab'.repeat(32) };
  it.each([
    [keyFor({ kind: 'blob', digest }), 'blob'],
    [keyFor({ kind: 'blobIndex', digest }), 'blob_index'],
    [keyFor({ kind: 'tagLink', namespace: 'team/app', tag: 'v1' }), 'tag_link'],
    [keyFor({ kind: 'tags', namespace: 'team/app' }), 'tag'],
    [keyFor({ kind: 'revisionLink', namespace: 'team/app', digest }), 'revision_link'],
    [keyFor({ kind: 'pulledAt', namespace: 'a', digest }), 'pulled_at'],
    [keyFor({ kind: 'tagTombstone', namespace: 'a', tag: 'v1' }), 'tombstone'],
    [keyFor({ kind: 'layerLink', namespace: 'a/b/c', digest }), 'layer_link'],
    [keyFor({ kind: 'referrerLink', namespace: 'a', subject: digest, referrer: digest }), 'referrer_link'],
    [keyFor({ kind: 'uploadStartedAt', namespace: 'a', id: 'u1' }), 'upload_startedat'],
    [keyFor({ kind: 'uploadWriter', namespace: 'a', id: 'u1' }), 'upload_writer'],
    [keyFor({ kind: 'uploads', namespace: 'a' }), 'upload'],
    [keyFor({ kind: 'jobPending', queue: 'cache', name: 'x' }), 'job_pending'],
    [keyFor({ kind: 'jobClaim', queue: 'cache', id: 'x' }), 'job_claims'],
    [keyFor({ kind: 'jobQueues' }), 'jobs'],
    [keyFor({ kind: 'lostAndFound', key: 'a/b' }), 'lost_and_found'],
    [keyFor({ kind: 'namespace', namespace: 'team' }), 'namespace'],
  ])('%s → %s', (path, kind) => {
    expect(keyKindOf(path)).toBe(kind);
  });
});
