import type { IncomingMessage } from 'node:http';

/**
 * Who the gateway authenticated, as the services behind it need it (logs, events). Absent when the
 * caller is anonymous. The gateway's full identity (OIDC claims included) stays in the gateway:
 * authorization happens there.
 */
export interface Identity {
  /** Basic auth: the `[auth.identity.<name>]` that matched. */
  readonly id?: string;
  /** Basic auth: the username. */
  readonly username?: string;
  /** mTLS: the verified client certificate's subject. */
  readonly certificate?: {
    readonly commonNames: readonly string[];
    readonly organizations: readonly string[];
  };
  /** OIDC: the provider (`[auth.oidc.<name>]`) that verified the token, and its `sub` claim. */
  readonly oidc?: { readonly providerName: string; readonly subject?: string };
}

/**
 * The caller exactly as access policies see it (`identity.*` of CEL rules, the gateway's identity
 * with OIDC claims): what registry-api needs to judge, with the same policies, which namespaces a
 * cross-namespace listing may show (docs/extension-api.md). Forwarded only for those listings.
 */
export interface PolicyIdentity {
  readonly client_ip: string;
  readonly id?: string;
  readonly username?: string;
  readonly certificate?: {
    readonly common_names: readonly string[];
    readonly organizations: readonly string[];
  };
  readonly oidc?: { readonly provider_name: string; readonly claims: Readonly<Record<string, unknown>> };
}

/**
 * What the gateway decided about a request, for the services behind it. In one process it rides
 * on the request object; across processes it travels in the `x-angos-context` header.
 */
export interface RequestContext {
  readonly clientIp: string;
  readonly identity?: Identity;
  /**
   * Namespaces from which the gateway has judged a cross-repository mount readable for this
   * request (`POST …/blobs/uploads/?mount=<digest>&from=<ns>`). Absent means none.
   */
  readonly mountAllowedFrom?: readonly string[];
  /**
   * The request's `X-Angos-Source-Timestamp`, as sent, when the gateway judged the caller allowed
   * to replicate (`replicate` action). Absent otherwise: registry-api never reads the header itself.
   */
  readonly sourceTimestamp?: string;
  /** The extension API's cross-namespace listings (`list-namespaces`, `list-repositories`): who asks, for the policy. */
  readonly policyIdentity?: PolicyIdentity;
}

const contexts = new WeakMap<IncomingMessage, RequestContext>();

export function setContext(req: IncomingMessage, context: RequestContext): void {
  contexts.set(req, context);
}

/**
 * The context the gateway attached, or, for a request that never went through it, the least
 * privileged one: anonymous, no mount sources.
 */
export function getContext(req: IncomingMessage): RequestContext {
  return contexts.get(req) ?? { clientIp: req.socket.remoteAddress ?? '' };
}

export class InvalidContextError extends Error {
  override readonly name = 'InvalidContextError';
}

/**
 * Above this the header is not something our gateway wrote. Room for a policy identity's OIDC
 * claims: they came in a token within the gateway's MAX_HEADER_SIZE (16 KiB) of request headers,
 * and base64url adds a third. The services behind the gateway accept INTERNAL_MAX_HEADER_SIZE.
 */
export const MAX_CONTEXT_LENGTH = 32 * 1024;

export function encodeContext(context: RequestContext): string {
  const wire: Record<string, unknown> = { clientIp: context.clientIp };
  if (context.identity !== undefined) wire['identity'] = context.identity;
  if (context.mountAllowedFrom !== undefined) wire['mountAllowedFrom'] = context.mountAllowedFrom;
  if (context.sourceTimestamp !== undefined) wire['sourceTimestamp'] = context.sourceTimestamp;
  if (context.policyIdentity !== undefined) wire['policyIdentity'] = context.policyIdentity;
  return Buffer.from(JSON.stringify(wire), 'utf8').toString('base64url');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(record: Record<string, unknown>, key: string): string | undefined {
  const value = record[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidContextError(`context ${key} must be a string`);
  return value;
}

function stringArray(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new InvalidContextError(`context ${what} must be an array of strings`);
  }
  return value;
}

function decodeCertificate(value: unknown): NonNullable<Identity['certificate']> {
  if (!isRecord(value)) throw new InvalidContextError('context identity.certificate must be an object');
  return {
    commonNames: stringArray(value['commonNames'], 'identity.certificate.commonNames'),
    organizations: stringArray(value['organizations'], 'identity.certificate.organizations'),
  };
}

function decodeOidc(value: unknown): NonNullable<Identity['oidc']> {
  if (!isRecord(value)) throw new InvalidContextError('context identity.oidc must be an object');
  const providerName = value['providerName'];
  if (typeof providerName !== 'string') {
    throw new InvalidContextError('context identity.oidc.providerName must be a string');
  }
  const subject = optionalString(value, 'subject');
  return { providerName, ...(subject === undefined ? {} : { subject }) };
}

function decodeIdentity(value: unknown): Identity {
  if (!isRecord(value)) throw new InvalidContextError('context identity must be an object');
  const id = optionalString(value, 'id');
  const username = optionalString(value, 'username');
  return {
    ...(id === undefined ? {} : { id }),
    ...(username === undefined ? {} : { username }),
    ...(value['certificate'] === undefined ? {} : { certificate: decodeCertificate(value['certificate']) }),
    ...(value['oidc'] === undefined ? {} : { oidc: decodeOidc(value['oidc']) }),
  };
}

function decodePolicyIdentity(value: unknown): PolicyIdentity {
  if (!isRecord(value)) throw new InvalidContextError('context policyIdentity must be an object');
  const clientIp = value['client_ip'];
  if (typeof clientIp !== 'string')
    throw new InvalidContextError('context policyIdentity.client_ip must be a string');
  const id = optionalString(value, 'id');
  const username = optionalString(value, 'username');
  const certificate = value['certificate'];
  const oidc = value['oidc'];
  if (certificate !== undefined && !isRecord(certificate))
    throw new InvalidContextError('context policyIdentity.certificate must be an object');
  if (
    oidc !== undefined &&
    (!isRecord(oidc) || typeof oidc['provider_name'] !== 'string' || !isRecord(oidc['claims']))
  )
    throw new InvalidContextError('context policyIdentity.oidc must name a provider and claims');
  return {
    client_ip: clientIp,
    ...(id === undefined ? {} : { id }),
    ...(username === undefined ? {} : { username }),
    ...(certificate === undefined
      ? {}
      : {
          certificate: {
            common_names: stringArray(certificate['common_names'], 'policyIdentity.certificate.common_names'),
            organizations: stringArray(
              certificate['organizations'],
              'policyIdentity.certificate.organizations',
            ),
          },
        }),
    ...(oidc === undefined
      ? {}
      : {
          oidc: {
            provider_name: oidc['provider_name'] as string,
            claims: oidc['claims'] as Record<string, unknown>,
          },
        }),
  };
}

function decodeNamespaces(value: unknown): string[] {
  return stringArray(value, 'mountAllowedFrom');
}

/**
 * Reads a context written by encodeContext. Throws InvalidContextError for anything else; unknown
 * keys are ignored so a newer gateway can talk to an older service during a rolling update.
 */
export function decodeContext(header: string): RequestContext {
  if (header.length > MAX_CONTEXT_LENGTH) throw new InvalidContextError('context header too long');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidContextError('context header is not base64url JSON');
  }
  if (!isRecord(parsed)) throw new InvalidContextError('context must be an object');
  const clientIp = parsed['clientIp'];
  if (typeof clientIp !== 'string') throw new InvalidContextError('context clientIp must be a string');
  const sourceTimestamp = optionalString(parsed, 'sourceTimestamp');
  return {
    ...(sourceTimestamp === undefined ? {} : { sourceTimestamp }),
    clientIp,
    ...(parsed['identity'] === undefined ? {} : { identity: decodeIdentity(parsed['identity']) }),
    ...(parsed['mountAllowedFrom'] === undefined
      ? {}
      : { mountAllowedFrom: decodeNamespaces(parsed['mountAllowedFrom']) }),
    ...(parsed['policyIdentity'] === undefined
      ? {}
      : { policyIdentity: decodePolicyIdentity(parsed['policyIdentity']) }),
  };
}
