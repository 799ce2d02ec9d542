import { repositoryFor } from './repository-key.js';
import type { Config, RepositoryConfig } from './types.js';

/**
 * Which namespaces are pull-through caches, and which of them serves containerd's mirror requests
 * (`?ns=<registry host>`). Read from the configuration on every call, so a reload that adds or
 * removes an upstream routes the next request accordingly.
 */

/** True when `namespace` lies under a repository with at least one `[[…upstream]]`: a pull-through cache. */
export function isPullThroughNamespace(config: Pick<Config, 'repository'>, namespace: string): boolean {
  return (repositoryFor(config, namespace)?.upstream.length ?? 0) > 0;
}

/** True when some repository of the configuration has an upstream. */
export function hasPullThroughRepositories(config: Pick<Config, 'repository'>): boolean {
  return Object.values(config.repository).some((repository) => repository.upstream.length > 0);
}

/**
 * Docker Hub's names for itself: image references say `docker.io`, its API lives at
 * `registry-1.docker.io`, and old clients say `index.docker.io`. containerd sends `ns=docker.io`.
 */
const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** A registry host as a comparable string: lower case, default ports dropped, Docker Hub's aliases one. */
function canonicalHost(host: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(`https://${host}`);
  } catch {
    return undefined;
  }
  // Only a bare host[:port]: no user info, path, query or fragment smuggled in through `ns`.
  if (parsed.username !== '' || parsed.password !== '' || parsed.pathname !== '/' || parsed.search !== '')
    return undefined;
  const name = parsed.host.toLowerCase();
  return DOCKER_HUB_HOSTS.has(name) ? 'docker.io' : name;
}

/**
 * The local namespace that mirrors `name` of the registry `registryHost` (containerd's
 * `/v2/<name>/…?ns=<registryHost>`), or undefined when no repository does. A repository mirrors a
 * registry when its FIRST upstream is on that host (`docker.io` and `registry-1.docker.io` are one).
 * The upstream URL's mapping (configuration reference, `upstream.url`) is read backwards: for a bare
 * host `<key>/<name>`; for a path URL `https://host/team`, `team/x` is `<key>/x`, `team` is `<key>`,
 * and names outside `team` are not that repository's. Repositories are tried in key order. A name
 * already under a repository that mirrors the host is returned as it is: the mirror's path then
 * names the repository (containerd's `override_path = true` with `/v2/<key>`).
 */
export function mirrorNamespace(
  config: Pick<Config, 'repository'>,
  registryHost: string,
  name: string,
): string | undefined {
  const wanted = canonicalHost(registryHost);
  if (wanted === undefined) return undefined;
  const mirrors = (repository: RepositoryConfig | undefined) => {
    const first = repository?.upstream[0];
    return first !== undefined && canonicalHost(new URL(first.url).host) === wanted;
  };
  // Already the local name (containerd's `override_path`, pointing at `/v2/<key>`): kept as it is.
  if (mirrors(repositoryFor(config, name))) return name;
  for (const key of Object.keys(config.repository).sort()) {
    const first = config.repository[key]?.upstream[0];
    if (first === undefined || !mirrors(config.repository[key])) continue;
    const url = new URL(first.url);
    const prefix = url.pathname.replace(/^\/+|\/+$/g, '');
    if (prefix === '') return `${key}/${name}`;
    if (name === prefix) return key;
    if (name.startsWith(`${prefix}/`)) return `${key}/${name.slice(prefix.length + 1)}`;
  }
  return undefined;
}
