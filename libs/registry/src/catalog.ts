import { ALGORITHMS } from '@angos/oci';
import { keyFor, type MetadataStore } from '@angos/storage';
import { exists } from './links.js';

/** Every namespace that holds a manifest, sorted, after `last`, at most `limit`. */
export async function listNamespaces(
  metadata: MetadataStore,
  options: { limit?: number | undefined; last?: string | undefined },
): Promise<{ namespaces: string[]; more: boolean }> {
  const found: string[] = [];
  await walk(metadata, '', found);
  found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const last = options.last;
  const after = last === undefined ? found : found.filter((name) => name > last);
  const limit = options.limit ?? after.length;
  return { namespaces: after.slice(0, limit), more: after.length > limit };
}

/**
 * Whether the namespace holds at least one manifest: what makes it exist for `_catalog` and
 * `tags/list`, as in distribution. Layers, upload sessions, or a pull time left behind by a
 * deleted manifest do not count, so the revision's link itself is checked, not its directory.
 */
export async function holdsManifest(metadata: MetadataStore, namespace: string): Promise<boolean> {
  for (const algorithm of ALGORITHMS) {
    for (const hex of await metadata.list(keyFor({ kind: 'revisionLinks', namespace, algorithm }))) {
      const digest = { algorithm, hex };
      if (await exists(metadata, keyFor({ kind: 'revisionLink', namespace, digest }))) return true;
    }
  }
  return false;
}

// Children of a namespace directory not starting with `_` are nested namespace components
// (`team` → `team/app`); `_manifests` is where a namespace keeps its manifests.
async function walk(metadata: MetadataStore, prefix: string, found: string[]): Promise<void> {
  const children = await metadata.list(prefix);
  if (prefix !== '' && children.includes('_manifests') && (await holdsManifest(metadata, prefix))) {
    found.push(prefix);
  }
  for (const child of children) {
    if (child.startsWith('_') || child.startsWith('.')) continue;
    await walk(metadata, prefix === '' ? child : `${prefix}/${child}`, found);
  }
}
