/**
 * The UI's addresses, as data. They are real paths (history API), so a reload or a shared link
 * lands on the same page: registry-api answers index.html for any of them.
 *
 *   /                          namespace tree
 *   /search?q=<text>           namespace search
 *   /n/<namespace>             namespace (?tab=revisions|uploads, ?sort=, ?order=)
 *   /n/<namespace>/m/<digest>  manifest
 *   /uploads                   uploads in progress (?ns=<namespace>)
 *   /jobs                      jobs (?queue=, ?state=)
 *
 * A namespace may contain a component named `m`, but a digest always contains `:` and a namespace
 * never does, so `/n/a/m/sha256:…` is a manifest and `/n/a/m` is the namespace `a/m`.
 */
export type Route =
  | { readonly page: 'tree' }
  | { readonly page: 'search'; readonly q: string }
  | { readonly page: 'namespace'; readonly namespace: string; readonly params: URLSearchParams }
  | { readonly page: 'manifest'; readonly namespace: string; readonly digest: string }
  | { readonly page: 'uploads'; readonly namespace: string }
  | { readonly page: 'jobs'; readonly params: URLSearchParams }
  | { readonly page: 'not-found'; readonly path: string };

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export function parseLocation(pathname: string, search: string): Route {
  const params = new URLSearchParams(search);
  const path = pathname.replace(/\/+$/, '') || '/';
  if (path === '/') return { page: 'tree' };
  if (path === '/search') return { page: 'search', q: params.get('q') ?? '' };
  if (path === '/uploads') return { page: 'uploads', namespace: params.get('ns') ?? '' };
  if (path === '/jobs') return { page: 'jobs', params };
  if (path.startsWith('/n/')) {
    const segments = path.slice('/n/'.length).split('/').map(decoded);
    const count = segments.length;
    const digest = segments[count - 1] ?? '';
    if (count >= 3 && segments[count - 2] === 'm' && digest.includes(':')) {
      return { page: 'manifest', namespace: segments.slice(0, count - 2).join('/'), digest };
    }
    const namespace = segments.join('/');
    if (namespace !== '') return { page: 'namespace', namespace, params };
  }
  return { page: 'not-found', path };
}

export const href = {
  tree: () => '/',
  search: (q: string) => `/search?${new URLSearchParams({ q })}`,
  namespace: (namespace: string, params: Record<string, string> = {}) => {
    const search = new URLSearchParams(params).toString();
    return `/n/${namespace}${search === '' ? '' : `?${search}`}`;
  },
  manifest: (namespace: string, digest: string) => `/n/${namespace}/m/${digest}`,
  uploads: (namespace = '') =>
    namespace === '' ? '/uploads' : `/uploads?${new URLSearchParams({ ns: namespace })}`,
  jobs: (params: Record<string, string> = {}) => {
    const search = new URLSearchParams(params).toString();
    return `/jobs${search === '' ? '' : `?${search}`}`;
  },
};
