import { describe, expect, it } from 'vitest';
import { createBlobStore, createMetadataStore, InvalidKeyError, MemoryMetadataStore } from '../src/index.js';
import { describeBlobStoreContract, describeMetadataStoreContract } from '../src/testing/contract.js';

const noCleanup = async () => {};
describeMetadataStoreContract('memory', async () => ({
  store: createMetadataStore({ kind: 'memory' }),
  cleanup: noCleanup,
}));
describeBlobStoreContract('memory', async () => ({
  store: createBlobStore({ kind: 'memory' }),
  cleanup: noCleanup,
}));

describe('MemoryMetadataStore, like the fs driver', () => {
  it('refuses a value where a prefix is, or under a value', async () => {
    const store = new MemoryMetadataStore();
    await store.put('a/b', 'value');
    await expect(store.put('a/b/c', 'x')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(store.put('a', 'x')).rejects.toBeInstanceOf(InvalidKeyError);
    expect(await store.putIfAbsent('a', 'x')).toBe(false);
    expect(await store.list('')).toEqual(['a']);
  });
});
