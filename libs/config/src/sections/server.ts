import { hostOrAddress, integer, nonEmptyString } from '../scalars.js';
import { optional, required, table, withDefault } from '../schema.js';
import type { ServerConfig, TlsConfig } from '../types.js';

/** `[server.tls]`: absent means plain HTTP. */
export const tlsSchema = table<TlsConfig>({
  server_certificate_bundle: required(nonEmptyString()),
  server_private_key: required(nonEmptyString()),
  client_ca_bundle: optional(nonEmptyString()),
});

/** `[server]`. */
export const serverSchema = table<ServerConfig>({
  bind_address: required(hostOrAddress()),
  port: withDefault(integer('u16'), 8000),
  query_timeout: withDefault(integer('u64', { nonZero: true }), 3600),
  query_timeout_grace_period: withDefault(integer('u64', { nonZero: true }), 60),
  workers: optional(integer('u16', { nonZero: true })),
  tls: optional(tlsSchema),
});
