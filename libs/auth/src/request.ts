import { type Action, actionFor, isValidNamespace, type Route } from '@angos/oci';

/**
 * What a request asks to do, as CEL rules see it (`request.*`) and as the authorization webhook
 * receives it. Only `action` is always present; each other field is present only for the actions
 * it belongs to and only when the request carries it, so rules test it with `has()`.
 */
export interface AccessRequest {
  readonly action: Action;
  readonly namespace?: string;
  /** Blob actions, `mount-blob` (the blob to mount), `complete-upload` and monolithic `start-upload` (`?digest=`), manifest actions by digest, `get-referrers` (the subject). */
  readonly digest?: string;
  /** Manifest actions: the tag or digest in the URL. */
  readonly reference?: string;
  /** `put-manifest`: the tags the push creates (the URL's tag, or `?tag=` on a push by digest); may be empty. */
  readonly tags?: readonly string[];
  /** Upload session actions: the session id in the URL. */
  readonly session_id?: string;
  /** `mount-blob`: the namespace to mount from (`?from=`), when it is a valid namespace. */
  readonly from?: string;
  /** Lists (`list-tags`, `list-catalog`, the job lists, the extension API's lists): the page size (`?n=`), when it is a non-negative integer. */
  readonly n?: number;
  /** The same lists: the pagination marker (`?last=`). */
  readonly last?: string;
  /** The jobs API: the queue (`?queue=` of a list, or the one in the URL). */
  readonly queue?: string;
  /** `retry-job`, `delete-job`: the job id in the URL. */
  readonly job_id?: string;
  /** `get-referrers`: the `?artifactType=` filter. */
  readonly artifact_type?: string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const PAGE_SIZE = /^\d{1,15}$/;

/** A tag can never contain a colon, so a reference with one is a digest. */
function isDigestReference(reference: string): boolean {
  return reference.includes(':');
}

function setIfPresent(
  target: Mutable<AccessRequest>,
  key: 'digest' | 'last' | 'artifact_type' | 'queue',
  value: string | null,
): void {
  if (value !== null && value !== '') target[key] = value;
}

/**
 * Describes a request for authorization. Undefined when the route has no action for the method
 * (a method the route does not allow, or an extension endpoint without an action yet): such a
 * request is refused before it could reach anything.
 */
export function describeRequest(
  route: Route,
  method: string,
  query: URLSearchParams,
): AccessRequest | undefined {
  const action = actionFor(route, method, query);
  if (action === undefined) return undefined;
  const request: Mutable<AccessRequest> = { action };
  switch (route.kind) {
    case 'apiVersion':
    case 'uiConfig':
    case 'extension':
      break;
    // The extension API. `list-namespaces` and `list-repositories` name no namespace here: the
    // listing is asked as a whole, then each namespace in it is judged with `list-namespaces`.
    case 'extRepositories':
    case 'extNamespaces':
    case 'extTags':
    case 'extRevisions':
    case 'extUploads': {
      if ('namespace' in route) request.namespace = route.namespace;
      const n = query.get('n');
      if (n !== null && PAGE_SIZE.test(n)) request.n = Number(n);
      setIfPresent(request, 'last', query.get('last'));
      break;
    }
    case 'extManifest':
      request.namespace = route.namespace;
      request.digest = route.digest;
      break;
    case 'catalog':
    case 'tags':
    case 'pendingJobs':
    case 'failedJobs': {
      if (route.kind === 'tags') request.namespace = route.namespace;
      if (route.kind === 'pendingJobs' || route.kind === 'failedJobs')
        setIfPresent(request, 'queue', query.get('queue'));
      const n = query.get('n');
      if (n !== null && PAGE_SIZE.test(n)) request.n = Number(n);
      setIfPresent(request, 'last', query.get('last'));
      break;
    }
    case 'pendingJob':
    case 'failedJob':
    case 'failedJobRetry':
      request.queue = route.queue;
      request.job_id = route.id;
      break;
    case 'manifest':
      request.namespace = route.namespace;
      request.reference = route.reference;
      if (isDigestReference(route.reference)) request.digest = route.reference;
      if (action === 'put-manifest') {
        request.tags = isDigestReference(route.reference)
          ? query.getAll('tag').filter((tag) => tag !== '')
          : [route.reference];
      }
      break;
    case 'blob':
      request.namespace = route.namespace;
      request.digest = route.digest;
      break;
    case 'uploads':
      request.namespace = route.namespace;
      if (action === 'mount-blob') {
        setIfPresent(request, 'digest', query.get('mount'));
        const from = query.get('from');
        if (from !== null && isValidNamespace(from)) request.from = from;
      } else {
        setIfPresent(request, 'digest', query.get('digest'));
      }
      break;
    case 'upload':
      request.namespace = route.namespace;
      request.session_id = route.id;
      if (action === 'complete-upload') setIfPresent(request, 'digest', query.get('digest'));
      break;
    case 'referrers':
      request.namespace = route.namespace;
      request.digest = route.digest;
      setIfPresent(request, 'artifact_type', query.get('artifactType'));
      break;
  }
  return request;
}

/**
 * The upload a mount turns into when it cannot mount (the source lacks the blob, or may not be
 * read): the registry then opens an upload session, or stores the request's body. A mount is
 * therefore authorized as an upload into its namespace too, so that a policy granting
 * `mount-blob` alone lets nobody upload.
 */
export function mountFallbackRequest(request: AccessRequest): AccessRequest | undefined {
  if (request.action !== 'mount-blob' || request.namespace === undefined) return undefined;
  return { action: 'start-upload', namespace: request.namespace };
}

/** The request to authorize a mount's source: reading the blob from the namespace it comes from. */
export function mountSourceRequest(request: AccessRequest): AccessRequest | undefined {
  if (request.action !== 'mount-blob' || request.from === undefined || request.digest === undefined)
    return undefined;
  return { action: 'get-blob', namespace: request.from, digest: request.digest };
}
