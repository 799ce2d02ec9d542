/**
 * Who made a request, as the authentication chain established it and as CEL rules see it
 * (`identity.*`). Fields are spelled as rules spell them. A field nobody established is absent
 * rather than empty, so rules test it with `has()`: `has(identity.username)`.
 */
export interface Identity {
  /** The socket peer address (IPv4-mapped IPv6 addresses in their IPv4 form). */
  readonly client_ip: string;
  /** Basic auth: the `<name>` of the `[auth.identity.<name>]` table that matched. */
  readonly id?: string;
  /** Basic auth: the username the client logged in with. */
  readonly username?: string;
  /** mTLS: the verified client certificate's subject. */
  readonly certificate?: CertificateIdentity;
  /** OIDC: the provider that verified the bearer token, and the token's claims. */
  readonly oidc?: OidcIdentity;
}

export interface CertificateIdentity {
  readonly common_names: readonly string[];
  readonly organizations: readonly string[];
}

export interface OidcIdentity {
  /** The `<name>` of `[auth.oidc.<name>]`. */
  readonly provider_name: string;
  /** The verified JWT claims, as JSON values. */
  readonly claims: Readonly<Record<string, unknown>>;
}

/** The methods of the authentication chain, in the order they run (and the metric's `method` label). */
export type AuthMethod = 'mtls' | 'oidc' | 'basic';

/** True when any method established who the caller is; false for anonymous callers. */
export function isAuthenticated(identity: Identity): boolean {
  return identity.username !== undefined || identity.certificate !== undefined || identity.oidc !== undefined;
}

/** `::ffff:10.0.0.1` → `10.0.0.1`: rules compare addresses as operators write them. */
export function normalizeClientIp(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
}
