import type { Identity } from '@angos/auth';
import type { Identity as ContextIdentity } from '@angos/http';

/**
 * The part of the gateway's identity the services behind it receive: who, not the full token.
 * Undefined for anonymous callers.
 */
export function contextIdentity(identity: Identity): ContextIdentity | undefined {
  const out: {
    id?: string;
    username?: string;
    certificate?: ContextIdentity['certificate'];
    oidc?: ContextIdentity['oidc'];
  } = {};
  if (identity.id !== undefined) out.id = identity.id;
  if (identity.username !== undefined) out.username = identity.username;
  if (identity.certificate !== undefined) {
    out.certificate = {
      commonNames: identity.certificate.common_names,
      organizations: identity.certificate.organizations,
    };
  }
  if (identity.oidc !== undefined) {
    const subject = identity.oidc.claims['sub'];
    out.oidc = {
      providerName: identity.oidc.provider_name,
      ...(typeof subject === 'string' ? { subject } : {}),
    };
  }
  return Object.keys(out).length === 0 ? undefined : out;
}
