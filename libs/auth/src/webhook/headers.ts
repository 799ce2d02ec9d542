import type { IncomingHttpHeaders } from 'node:http';
import type { AuthWebhookConfig } from '@angos/config';
import type { Identity } from '../identity.js';
import type { AccessRequest } from '../request.js';

/** The client request as the webhook is told about it. */
export interface ClientRequestDetails {
  readonly method: string;
  /** Path and query as the client sent them. */
  readonly uri: string;
  readonly host: string;
  readonly proto: 'http' | 'https';
  readonly headers: IncomingHttpHeaders;
}

/** Header values must be single-line: anything else is dropped rather than sent mangled. */
function clean(value: string | undefined): string | undefined {
  if (value === undefined || value === '' || /[\r\n\0]/.test(value)) return undefined;
  return value;
}

/**
 * The headers an authorization webhook receives: the client's `forward_headers`, then what the
 * registry knows (these win over a forwarded header of the same name, so a client cannot speak
 * for the registry):
 *
 * | header | value |
 * |---|---|
 * | `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri`, `-For` | the client request and address |
 * | `X-Registry-Action`, `-Namespace`, `-Reference`, `-Digest` | what it asks to do |
 * | `X-Registry-Username`, `-Identity-ID` | basic auth identity |
 * | `X-Registry-Certificate-CN`, `-Certificate-O` | mTLS subject (comma-separated) |
 * | `X-Registry-OIDC-Provider`, `-OIDC-Subject` | OIDC provider name and `sub` claim |
 *
 * Absent values are left out. Names are lower case (HTTP header names are case-insensitive).
 */
export function webhookHeaders(
  config: AuthWebhookConfig,
  identity: Identity,
  request: AccessRequest,
  client: ClientRequestDetails,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of config.forward_headers) {
    const value = client.headers[name.toLowerCase()];
    const joined = clean(Array.isArray(value) ? value.join(', ') : value);
    if (joined !== undefined) headers[name.toLowerCase()] = joined;
  }
  const put = (name: string, value: string | undefined) => {
    const safe = clean(value);
    if (safe === undefined) delete headers[name];
    else headers[name] = safe;
  };
  put('x-forwarded-method', client.method);
  put('x-forwarded-proto', client.proto);
  put('x-forwarded-host', client.host);
  put('x-forwarded-uri', client.uri);
  put('x-forwarded-for', identity.client_ip);
  put('x-registry-action', request.action);
  put('x-registry-namespace', request.namespace);
  put('x-registry-reference', request.reference);
  put('x-registry-digest', request.digest);
  put('x-registry-username', identity.username);
  put('x-registry-identity-id', identity.id);
  put('x-registry-certificate-cn', identity.certificate?.common_names.join(','));
  put('x-registry-certificate-o', identity.certificate?.organizations.join(','));
  put('x-registry-oidc-provider', identity.oidc?.provider_name);
  const subject = identity.oidc?.claims['sub'];
  put('x-registry-oidc-subject', typeof subject === 'string' ? subject : undefined);
  return headers;
}

/** `Authorization` towards the webhook itself: its `bearer_token` or `basic_auth`. */
export function webhookCredentials(config: AuthWebhookConfig): string | undefined {
  if (config.bearer_token !== undefined) return `Bearer ${config.bearer_token}`;
  if (config.basic_auth !== undefined) {
    const { username, password } = config.basic_auth;
    return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
  }
  return undefined;
}
