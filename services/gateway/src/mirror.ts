import type { IncomingMessage } from 'node:http';
import { type Config, mirrorNamespace } from '@angos/config';
import { isServedByRegistryApi, type Route } from '@angos/oci';

/**
 * containerd's registry-host mirrors (hosts.toml): a pull of `docker.io/library/alpine` through a
 * mirror asks the mirror for `/v2/library/alpine/…?ns=docker.io`. The `ns` names the registry the
 * image comes from; the repository whose first upstream is that registry serves it, under its own
 * namespace (`docker-io/library/alpine`). Mapped here, where the gateway reads the route, so that
 * authorization decides on the namespace actually served and the service behind the gateway sees
 * only that one.
 */

/** The query parameter containerd adds to every request it sends to a mirror. */
const NAMESPACE_PARAMETER = 'ns';

/**
 * The route as served: `route` itself, or, for a mirror request whose registry a pull-through
 * repository mirrors, the route of that repository's namespace. In the second case `req.url` is
 * rewritten to that namespace without the `ns` parameter, so the service behind the gateway (in
 * process or over HTTP, where the signature covers the rewritten path) serves what was authorized.
 * A registry no repository mirrors leaves the request as it is.
 */
export function mirroredRoute(
  req: IncomingMessage,
  path: string,
  query: URLSearchParams,
  route: Route | undefined,
  config: Config,
): Route | undefined {
  // The extension API's namespaced routes (`/v2/_ext/<ns>/_tags`) are the registry's own reads.
  if (route === undefined || !('namespace' in route) || isServedByRegistryApi(route)) return route;
  const registry = query.get(NAMESPACE_PARAMETER);
  if (registry === null) return route;
  const namespace = mirrorNamespace(config, registry, route.namespace);
  if (namespace === undefined || namespace === route.namespace) return route;
  const rest = new URLSearchParams(query);
  rest.delete(NAMESPACE_PARAMETER);
  const search = rest.size === 0 ? '' : `?${rest.toString()}`;
  // parseRoute took the namespace from the start of the path: what follows it is the endpoint.
  const endpoint = path.slice(`/v2/${route.namespace}`.length);
  req.url = `/v2/${namespace}${endpoint}${search}`;
  return { ...route, namespace };
}
