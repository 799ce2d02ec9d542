import { isValidNamespace } from '@angos/oci';
import { formatKeyPath, quoted } from '../key-path.js';
import { namespacesOverlap } from '../namespace.js';
import {
  boolean,
  httpUrl,
  integer,
  nonEmptyString,
  oneOf,
  regexList,
  string,
  stringList,
} from '../scalars.js';
import { arrayOf, optional, record, refine, required, table, withDefault } from '../schema.js';
import type { DownstreamConfig, DownstreamMode, RepositoryConfig, UpstreamConfig } from '../types.js';
import { requireBoth } from './pairs.js';
import { accessPolicySchema, retentionPolicySchema } from './policy.js';

/**
 * A registry URL for upstream/downstream. Its path, if any, is a namespace prefix on the remote
 * side (`https://host/team` → `team/…`), so it must itself be a valid namespace; query strings and
 * fragments have no meaning for the OCI API root.
 */
const registryUrl = () =>
  refine(httpUrl(), (value) => {
    const parsed = new URL(value);
    if (parsed.search !== '' || parsed.hash !== '') return 'must not have a query string or fragment';
    const prefix = parsed.pathname.replace(/^\/+|\/+$/g, '');
    if (prefix !== '' && !isValidNamespace(prefix)) return `path "${prefix}" is not a valid namespace`;
    return undefined;
  });

export const upstreamSchema = table<UpstreamConfig>(
  {
    url: required(registryUrl()),
    max_redirect: withDefault(integer('u8'), 5),
    server_ca_bundle: optional(nonEmptyString()),
    client_certificate: optional(nonEmptyString()),
    client_private_key: optional(nonEmptyString()),
    username: optional(nonEmptyString()),
    password: optional(string()),
  },
  {
    check(upstream, at) {
      requireBoth(upstream, 'client_certificate', 'client_private_key', at);
      requireBoth(upstream, 'username', 'password', at);
    },
  },
);

export const DOWNSTREAM_MODES = ['event+reconcile', 'event-only', 'reconcile-only'] as const;

export const downstreamSchema = table<DownstreamConfig>(
  {
    name: required(nonEmptyString()),
    url: required(registryUrl()),
    mode: withDefault(oneOf<DownstreamMode>(DOWNSTREAM_MODES), 'event+reconcile'),
    namespace_filter: withDefault(regexList(), () => []),
    max_concurrent_pushes: withDefault(integer('usize', { min: 1 }), 4),
    prune: withDefault(boolean(), false),
    max_redirect: withDefault(integer('u8'), 5),
    username: optional(nonEmptyString()),
    password: optional(string()),
    server_ca_bundle: optional(nonEmptyString()),
    client_certificate: optional(nonEmptyString()),
    client_private_key: optional(nonEmptyString()),
  },
  {
    check(downstream, at) {
      requireBoth(downstream, 'client_certificate', 'client_private_key', at);
      requireBoth(downstream, 'username', 'password', at);
    },
  },
);

/** `upstream_tag_check_interval_secs` when left out: a mutable tag is asked about once a minute. */
const DEFAULT_TAG_CHECK_INTERVAL_SECS = 60;

export const repositoryEntrySchema = table<RepositoryConfig>(
  {
    immutable_tags: optional(boolean()),
    immutable_tags_exclusions: optional(regexList()),
    authorization_webhook: optional(string()),
    event_webhooks: optional(stringList()),
    upstream: withDefault(arrayOf(upstreamSchema, { expected: 'expected array of tables' }), () => []),
    upstream_tag_check_interval_secs: withDefault(integer('u64'), DEFAULT_TAG_CHECK_INTERVAL_SECS),
    upstream_stale_tag_window_secs: optional(integer('u64')),
    downstream: withDefault(arrayOf(downstreamSchema, { expected: 'expected array of tables' }), () => []),
    access_policy: optional(accessPolicySchema),
    retention_policy: optional(retentionPolicySchema),
  },
  {
    check(repository, at) {
      // The name labels logs and metrics and keys the replication queue.
      const seen = new Set<string>();
      repository.downstream.forEach((downstream, index) => {
        if (seen.has(downstream.name)) {
          at.error(['downstream', index, 'name'], `duplicate downstream name "${downstream.name}"`);
        }
        seen.add(downstream.name);
      });
    },
  },
);

/**
 * `[repository."<namespace>"]`: keys are namespaces and may not overlap, because `team` already
 * governs `team/app`; a second table for it would make the owner of a namespace ambiguous.
 */
export const repositorySchema = record(repositoryEntrySchema, {
  placeholder: '"<namespace>"',
  segment: quoted,
  checkKey: (key) =>
    isValidNamespace(key) ? undefined : 'not a valid namespace (expected e.g. "team" or "team/app")',
  checkKeys(allKeys, at, segment) {
    const keys = allKeys.filter(isValidNamespace).sort();
    for (const [index, key] of keys.entries()) {
      for (const other of keys.slice(0, index)) {
        if (namespacesOverlap(key, other)) {
          at.error(
            segment(key),
            `overlaps with ${formatKeyPath(['repository', quoted(other)])}; repository keys must not be namespace prefixes of each other`,
          );
        }
      }
    }
  },
});
