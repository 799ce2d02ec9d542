import type { MetadataStore } from '@angos/storage';

// Children of a namespace directory that belong to it; anything else not
// starting with `_` is a nested namespace component (`team` → `team/app`).
const NAMESPACE_MARKERS = new Set(['_manifests', '_layers', '_uploads']);

/** Every namespace that holds something, sorted, after `last`, at most `limit`. */
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

async function walk(metadata: MetadataStore, prefix: string, found: string[]): Promise<void> {
  const children = await metadata.list(prefix);
  if (prefix !== '' && children.some((child) => NAMESPACE_MARKERS.has(child))) found.push(prefix);
  for (const child of children) {
    if (child.startsWith('_') || child.startsWith('.')) continue;
    await walk(metadata, prefix === '' ? child : `${prefix}/${child}`, found);
  }
}
