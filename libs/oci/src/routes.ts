/**
 * The URL router of the distribution API, as data: `parseRoute` turns a request
 * path into a `Route`, `actionFor` names what the request does for access
 * policies. No HTTP framework, no I/O.
 *
 * Paths are taken exactly as received, without percent-decoding: `%2F` or
 * `%2e%2e` stay literal and then fail namespace validation (NAME_INVALID),
 * so an encoded slash or dot-segment can never reach storage keys.
 */
export type Route =
  | { kind: 'apiVersion' }
  | { kind: 'catalog' }
  | { kind: 'tags'; namespace: string }
  | { kind: 'manifest'; namespace: string; reference: string }
  | { kind: 'blob'; namespace: string; digest: string }
  | { kind: 'uploads'; namespace: string }
  | { kind: 'upload'; namespace: string; id: string }
  | { kind: 'referrers'; namespace: string; digest: string }
  | { kind: 'pendingJobs' }
  | { kind: 'failedJobs' }
  | { kind: 'pendingJob'; queue: string; id: string }
  | { kind: 'failedJob'; queue: string; id: string }
  | { kind: 'failedJobRetry'; queue: string; id: string }
  | { kind: 'uiConfig' }
  | { kind: 'extRepositories' }
  | { kind: 'extNamespaces' }
  | { kind: 'extTags'; namespace: string }
  | { kind: 'extRevisions'; namespace: string }
  | { kind: 'extManifest'; namespace: string; digest: string }
  | { kind: 'extUploads'; namespace: string }
  | { kind: 'extension'; path: string };

export type RouteKind = Route['kind'];

/**
 * Parses the path of a request (no query string). Returns undefined when the
 * path is not a route of the API. Namespaces contain slashes and may contain
 * components named `blobs`, `manifests`, `tags`, so the endpoint is recognised
 * from the END of the path and everything before it is the namespace. The
 * namespace is not validated here (call isValidNamespace). Never throws.
 *
 *   /v2/ , /v2                         apiVersion
 *   /v2/_catalog                       catalog
 *   /v2/_ext/jobs/pending              pendingJobs (the queue is in the query: ?queue=)
 *   /v2/_ext/jobs/failed               failedJobs
 *   /v2/_ext/jobs/pending/<queue>/<id> pendingJob
 *   /v2/_ext/jobs/failed/<queue>/<id>  failedJob
 *   /v2/_ext/jobs/failed/<queue>/<id>/retry   failedJobRetry
 *   /v2/_ext/_ui/config                uiConfig
 *   /v2/_ext/_repositories             extRepositories
 *   /v2/_ext/_namespaces               extNamespaces (`?parent=` or `?q=`)
 *   /v2/_ext/<name>/_tags              extTags
 *   /v2/_ext/<name>/_revisions         extRevisions
 *   /v2/_ext/<name>/_manifests/<digest> extManifest
 *   /v2/_ext/<name>/_uploads           extUploads
 *   /v2/_ext/<other path>              extension (path after "/v2/_ext/", "" for /v2/_ext)
 *   /v2/<name>/tags/list               tags
 *   /v2/<name>/manifests/<reference>   manifest
 *   /v2/<name>/blobs/uploads[/]        uploads
 *   /v2/<name>/blobs/uploads/<id>      upload
 *   /v2/<name>/blobs/<digest>          blob
 *   /v2/<name>/referrers/<digest>      referrers
 */
export function parseRoute(pathname: string): Route | undefined {
  if (typeof pathname !== 'string') return undefined;
  if (pathname === '/v2' || pathname === '/v2/') return { kind: 'apiVersion' };
  if (!pathname.startsWith('/v2/')) return undefined;

  const rest = pathname.slice('/v2/'.length);
  if (rest === '_catalog') return { kind: 'catalog' };
  if (rest === '_ext') return { kind: 'extension', path: '' };
  if (rest.startsWith('_ext/')) return parseExtensionRoute(rest.slice('_ext/'.length));

  return parseNamespacedRoute(rest.split('/'));
}

/** The endpoints of the extension API that name a namespace, by their last path segment. */
const NAMESPACE_EXTENSIONS = {
  _tags: 'extTags',
  _revisions: 'extRevisions',
  _uploads: 'extUploads',
} as const satisfies Record<string, RouteKind>;

/**
 * The endpoints of the extension API (`path` is what follows `/v2/_ext/`); any other path stays an
 * `extension` route, which no action covers. Queue names and ids are validated by the handler.
 * OCI namespace components never start with `_`, so a `_`-segment after a namespace (`team/app/_tags`)
 * or at the root (`_namespaces`) cannot be mistaken for part of a name: `jobs/_tags` is the tags of
 * the namespace `jobs`, not a jobs endpoint.
 */
function parseExtensionRoute(path: string): Route {
  const segments = path.split('/');
  const count = segments.length;
  const last = segments[count - 1] ?? '';
  if (path === '_ui/config') return { kind: 'uiConfig' };
  if (path === '_repositories') return { kind: 'extRepositories' };
  if (path === '_namespaces') return { kind: 'extNamespaces' };
  if (count >= 2 && Object.hasOwn(NAMESPACE_EXTENSIONS, last)) {
    const kind = NAMESPACE_EXTENSIONS[last as keyof typeof NAMESPACE_EXTENSIONS];
    return { kind, namespace: segments.slice(0, -1).join('/') };
  }
  if (count >= 3 && segments[count - 2] === '_manifests' && last !== '') {
    return { kind: 'extManifest', namespace: segments.slice(0, -2).join('/'), digest: last };
  }
  return parseJobsRoute(path);
}

/** `/v2/_ext/jobs/…`: the jobs API. */
function parseJobsRoute(path: string): Route {
  const [root, state, queue, id, verb, ...more] = path.split('/');
  if (root !== 'jobs' || (state !== 'pending' && state !== 'failed') || more.length > 0)
    return { kind: 'extension', path };
  if (queue === undefined) return { kind: state === 'pending' ? 'pendingJobs' : 'failedJobs' };
  if (queue === '' || id === undefined || id === '') return { kind: 'extension', path };
  if (verb === undefined) return { kind: state === 'pending' ? 'pendingJob' : 'failedJob', queue, id };
  if (state === 'failed' && verb === 'retry') return { kind: 'failedJobRetry', queue, id };
  return { kind: 'extension', path };
}

/** `segments` is the path after `/v2/`, split on `/`; the endpoint is its tail. */
function parseNamespacedRoute(segments: readonly string[]): Route | undefined {
  const count = segments.length;
  const last = segments[count - 1] ?? '';
  const second = segments[count - 2];
  const third = segments[count - 3];
  // The namespace is everything before the endpoint's `tailLength` segments;
  // undefined when nothing is left for it.
  const namespaceBefore = (tailLength: number): string | undefined =>
    count > tailLength ? segments.slice(0, count - tailLength).join('/') || undefined : undefined;

  let namespace: string | undefined;
  if (second === 'tags' && last === 'list') {
    namespace = namespaceBefore(2);
    return namespace === undefined ? undefined : { kind: 'tags', namespace };
  }
  if (third === 'blobs' && second === 'uploads') {
    namespace = namespaceBefore(3);
    if (namespace === undefined) return undefined;
    return last === '' ? { kind: 'uploads', namespace } : { kind: 'upload', namespace, id: last };
  }
  if (second === 'blobs' && last === 'uploads') {
    namespace = namespaceBefore(2);
    return namespace === undefined ? undefined : { kind: 'uploads', namespace };
  }
  if (last === '') return undefined;
  if (second === 'manifests') {
    namespace = namespaceBefore(2);
    return namespace === undefined ? undefined : { kind: 'manifest', namespace, reference: last };
  }
  if (second === 'blobs') {
    namespace = namespaceBefore(2);
    return namespace === undefined ? undefined : { kind: 'blob', namespace, digest: last };
  }
  if (second === 'referrers') {
    namespace = namespaceBefore(2);
    return namespace === undefined ? undefined : { kind: 'referrers', namespace, digest: last };
  }
  return undefined;
}

/** The action names access policies are written against. */
export type Action =
  | 'get-api-version'
  | 'start-upload'
  | 'update-upload'
  | 'complete-upload'
  | 'get-upload'
  | 'cancel-upload'
  | 'mount-blob'
  | 'get-blob'
  | 'delete-blob'
  | 'put-manifest'
  | 'get-manifest'
  | 'delete-manifest'
  | 'get-referrers'
  | 'list-catalog'
  | 'list-tags'
  | 'list-pending-jobs'
  | 'list-failed-jobs'
  | 'retry-job'
  | 'delete-job'
  | 'ui-config'
  | 'list-repositories'
  | 'list-namespaces'
  | 'list-tag-details'
  | 'list-revisions'
  | 'get-revision'
  | 'list-uploads'
  | 'replicate'
  | 'ui-asset';

/**
 * Not a route's action: asked of the policy, beside `put-manifest` or `delete-manifest`, when such
 * a request carries `X-Angos-Source-Timestamp`. Only when allowed is the timestamp honoured (the
 * write is decided by last-writer-wins and dated by its author); otherwise it is ignored and logged.
 */
export const REPLICATE_ACTION = 'replicate' satisfies Action;

/**
 * Not a route of the API: a GET or HEAD of any path outside `/v2/` (and the service endpoints)
 * when `[ui] enabled = true`, which registry-api answers with the web UI's files. Judged like
 * every action, so a policy can keep the UI from whom it chooses; what the UI then shows comes
 * from the API, each request judged by its own action.
 */
export const UI_ASSET_ACTION = 'ui-asset' satisfies Action;

/** The methods the web UI's paths allow. */
export const UI_METHODS: readonly string[] = ['GET', 'HEAD'];

/** A path of the distribution and extension APIs; every other path is the web UI's (or unknown). */
export function isApiPath(pathname: string): boolean {
  return pathname === '/v2' || pathname.startsWith('/v2/');
}

/** The routes that name an endpoint (every kind but `extension`). */
type EndpointKind = Exclude<RouteKind, 'extension'>;

/**
 * Method → action for every route of the API. HEAD is the GET of the same resource.
 * A method absent from a route's row is not allowed on it (405). POST on
 * uploads is `mount-blob` instead when the query names a blob to mount.
 * An `extension` route (a `/v2/_ext/` path that names no endpoint) has no row: nothing may
 * reach it.
 */
export const ROUTE_ACTIONS: Readonly<Record<EndpointKind, Readonly<Record<string, Action>>>> = {
  apiVersion: { GET: 'get-api-version', HEAD: 'get-api-version' },
  catalog: { GET: 'list-catalog', HEAD: 'list-catalog' },
  tags: { GET: 'list-tags', HEAD: 'list-tags' },
  manifest: { GET: 'get-manifest', HEAD: 'get-manifest', PUT: 'put-manifest', DELETE: 'delete-manifest' },
  blob: { GET: 'get-blob', HEAD: 'get-blob', DELETE: 'delete-blob' },
  uploads: { POST: 'start-upload' },
  upload: {
    GET: 'get-upload',
    HEAD: 'get-upload',
    PATCH: 'update-upload',
    PUT: 'complete-upload',
    DELETE: 'cancel-upload',
  },
  referrers: { GET: 'get-referrers', HEAD: 'get-referrers' },
  // The jobs API: registry-wide, like the catalog (no namespace).
  pendingJobs: { GET: 'list-pending-jobs', HEAD: 'list-pending-jobs' },
  failedJobs: { GET: 'list-failed-jobs', HEAD: 'list-failed-jobs' },
  pendingJob: { DELETE: 'delete-job' },
  failedJob: { DELETE: 'delete-job' },
  failedJobRetry: { POST: 'retry-job' },
  // The browsing API of the web UI (docs/extension-api.md): reads only.
  uiConfig: { GET: 'ui-config', HEAD: 'ui-config' },
  extRepositories: { GET: 'list-repositories', HEAD: 'list-repositories' },
  extNamespaces: { GET: 'list-namespaces', HEAD: 'list-namespaces' },
  extTags: { GET: 'list-tag-details', HEAD: 'list-tag-details' },
  extRevisions: { GET: 'list-revisions', HEAD: 'list-revisions' },
  extManifest: { GET: 'get-revision', HEAD: 'get-revision' },
  extUploads: { GET: 'list-uploads', HEAD: 'list-uploads' },
};

/**
 * Routes of the extension API served by registry-api whatever namespace they name: they read the
 * store, so a pull-through namespace's are not the pull-through cache's to answer.
 */
const REGISTRY_API_ONLY: ReadonlySet<RouteKind> = new Set<RouteKind>([
  'extTags',
  'extRevisions',
  'extManifest',
  'extUploads',
]);

/** True for a route registry-api answers even when its namespace belongs to a pull-through repository. */
export function isServedByRegistryApi(route: Route): boolean {
  return REGISTRY_API_ONLY.has(route.kind);
}

/**
 * The action a request performs, or undefined when the method is not allowed
 * on the route (or the route is an extension route). Methods are matched
 * exactly: HTTP methods are case-sensitive.
 */
export function actionFor(route: Route, method: string, query: URLSearchParams): Action | undefined {
  if (route.kind === 'extension') return undefined;
  const row = ROUTE_ACTIONS[route.kind];
  const action = Object.hasOwn(row, method) ? row[method] : undefined;
  if (action === 'start-upload' && (query.get('mount') ?? '') !== '') return 'mount-blob';
  return action;
}

/** Methods allowed on a route, for the Allow header of a 405; undefined for extension routes. */
export function allowedMethods(route: Route): readonly string[] | undefined {
  return route.kind === 'extension' ? undefined : Object.keys(ROUTE_ACTIONS[route.kind]);
}
