import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { CertificateIdentity } from '../identity.js';
import { ABSENT, authenticated, rejected, type StepOutcome } from './outcome.js';

function isTlsSocket(socket: Socket): socket is TLSSocket {
  return (socket as Partial<TLSSocket>).encrypted === true;
}

/** A subject attribute may repeat (`CN=a, CN=b`); Node gives one string or an array. */
function values(attribute: string | string[] | undefined): string[] {
  if (attribute === undefined) return [];
  return (Array.isArray(attribute) ? attribute : [attribute]).filter((value) => value !== '');
}

function presentedCertificate(socket: TLSSocket): PeerCertificate | undefined {
  const certificate = socket.getPeerCertificate();
  // Without a client certificate Node returns an empty object (or null after the socket closed).
  return certificate && Object.keys(certificate).length > 0 ? certificate : undefined;
}

/**
 * mTLS: the client certificate the TLS layer verified against `server.tls.client_ca_bundle`.
 * The listener requests a certificate without requiring one, so clients without one continue with
 * the other methods; a certificate that does not verify is rejected and the chain goes on.
 */
export function authenticateCertificate(socket: Socket): StepOutcome<CertificateIdentity> {
  if (!isTlsSocket(socket)) return ABSENT;
  const certificate = presentedCertificate(socket);
  if (certificate === undefined) return ABSENT;
  if (!socket.authorized) {
    return rejected(`client certificate not verified: ${String(socket.authorizationError)}`);
  }
  return authenticated({
    common_names: values(certificate.subject?.CN),
    organizations: values(certificate.subject?.O),
  });
}
