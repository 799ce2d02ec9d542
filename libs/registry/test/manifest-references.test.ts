import { parseReference } from '@angos/oci';
import { keyFor } from '@angos/storage';
import { describe, expect, it } from 'vitest';
import { digestOf, manifestOf, testRegistry } from './support.js';

describe('Manifests.put allowMissingReferences (the pull-through cache stores manifests before their layers)', () => {
  it('stores a manifest over blobs the namespace lacks even when allow_missing_manifest_references is false, and records the references', async () => {
    const t = await testRegistry('memory', '[global]\nallow_missing_manifest_references = false\n');
    try {
      const body = manifestOf('config-bytes', ['layer-bytes']);
      const reference = parseReference('v1');
      await expect(
        t.registry.manifests.put('cache/app', reference, body, undefined, []),
      ).rejects.toMatchObject({
        kind: 'MANIFEST_BLOB_UNKNOWN',
      });
      const pushed = await t.registry.manifests.put('cache/app', reference, body, undefined, [], {
        allowMissingReferences: true,
      });
      expect((await t.registry.manifests.resolve('cache/app', reference)).digest).toEqual(pushed.digest);
      // The layer is referenced by the manifest already: once filled, garbage collection keeps it.
      const entry = await t.metadata.store.get(
        keyFor({ kind: 'blobIndex', digest: digestOf('layer-bytes') }),
      );
      expect(entry.toString()).toContain('cache/app');
    } finally {
      await t.close();
    }
  });
});
