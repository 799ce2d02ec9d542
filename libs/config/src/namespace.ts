/** True when one namespace is the other or a path prefix of it (`team` and `team/app`). */
export function namespacesOverlap(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

/**
 * Where `namespace`, governed by `[repository."<key>"]`, lives on the remote registry of an
 * upstream or downstream `url` (the configuration reference's mapping). A bare host drops the
 * repository key (`<key>/x` → `x`); a URL with a path puts that path in its place
 * (`https://host/team`: `<key>/x` → `team/x`). The repository root itself maps to `<key>` for a bare
 * host and to the path for a path URL. The remote registry is always spoken to at its `/v2/` root:
 * the path is a namespace prefix, never part of the HTTP path.
 *
 * Throws when `namespace` is not `key` or under it: the caller routed it to the wrong repository.
 */
export function remoteNamespace(url: string, key: string, namespace: string): string {
  const prefix = new URL(url).pathname.replace(/^\/+|\/+$/g, '');
  if (namespace === key) return prefix === '' ? key : prefix;
  if (!namespace.startsWith(`${key}/`)) {
    throw new Error(`namespace "${namespace}" is not under repository "${key}"`);
  }
  const rest = namespace.slice(key.length + 1);
  return prefix === '' ? rest : `${prefix}/${rest}`;
}

/**
 * Where `namespace`, governed by `[repository."<key>"]`, lands on a downstream `url` (the
 * configuration reference's downstream mapping). Unlike an upstream, a bare host mirrors the
 * namespace verbatim (`<key>/x` → `<key>/x`), so two peers hold the same names; a URL with a path
 * maps as `remoteNamespace` does (`https://host/team`: `<key>/x` → `team/x`, `<key>` → `team`).
 */
export function downstreamNamespace(url: string, key: string, namespace: string): string {
  const prefix = new URL(url).pathname.replace(/^\/+|\/+$/g, '');
  if (prefix === '') {
    remoteNamespace(url, key, namespace); // the same check: `namespace` is `key` or under it
    return namespace;
  }
  return remoteNamespace(url, key, namespace);
}
