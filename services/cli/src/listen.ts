import { once } from 'node:events';
import type { Server } from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import { CliError } from './errors.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

const PORT = /^\d{1,5}$/;

/**
 * Parses `--listen HOST:PORT`: `0.0.0.0:8000`, `localhost:8000`, `[::1]:8000` (an IPv6 address in
 * brackets, as in URLs). Port 0 asks the system for a free port.
 */
export function parseListen(value: string): ListenAddress {
  const invalid = (reason: string) => new CliError([`--listen: ${reason}: ${JSON.stringify(value)}`]);

  let host: string;
  let portText: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close === -1 || value[close + 1] !== ':') throw invalid('expected [IPV6]:PORT');
    host = value.slice(1, close);
    portText = value.slice(close + 2);
    if (isIP(host) !== 6) throw invalid('not an IPv6 address in brackets');
  } else {
    const colon = value.lastIndexOf(':');
    if (colon === -1) throw invalid('expected HOST:PORT');
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (host.includes(':')) throw invalid('put an IPv6 address in brackets, as in [::1]:8000');
  }
  if (host === '') throw invalid('missing host');
  if (!PORT.test(portText) || Number(portText) > 65535)
    throw invalid('port must be a number from 0 to 65535');
  return { host, port: Number(portText) };
}

/** `host:port`, with IPv6 hosts in brackets. */
export function formatAddress(address: ListenAddress): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** Listens on `address`; a CliError saying why when it cannot (in use, not allowed, not here). */
export async function listenOn(
  server: Server,
  address: ListenAddress,
  options: { readonly reusePort?: boolean } = {},
): Promise<{ host: string; port: number }> {
  server.listen({ port: address.port, host: address.host, reusePort: options.reusePort === true });
  try {
    await once(server, 'listening');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const where = formatAddress(address);
    const reason =
      code === 'EADDRINUSE'
        ? 'address already in use'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND'
            ? 'address not available on this host'
            : (error as Error).message;
    throw new CliError([`cannot listen on ${where}: ${reason}`]);
  }
  const bound = server.address() as AddressInfo;
  return { host: bound.address, port: bound.port };
}
