import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { dirname, resolve } from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { type ConfigIssue, formatKeyPath, type TlsConfig } from '@angos/config';
import { MAX_HEADER_SIZE } from '@angos/http';
import type { Logger } from '@angos/observability';

/** The PEM files `[server.tls]` names, read. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** `client_ca_bundle`: present means client certificates are requested and verified (mTLS). */
  readonly ca?: Buffer;
}

const FILE_OPTIONS = ['server_certificate_bundle', 'server_private_key', 'client_ca_bundle'] as const;

/** The files of `[server.tls]` that exist in the configuration, by option. */
function tlsFiles(tls: TlsConfig): Array<[(typeof FILE_OPTIONS)[number], string]> {
  return FILE_OPTIONS.flatMap((option) => {
    const path = tls[option];
    return path === undefined ? [] : [[option, path] as [(typeof FILE_OPTIONS)[number], string]];
  });
}

export class TlsMaterialError extends Error {
  override readonly name = 'TlsMaterialError';
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map((issue) => `${issue.path}: ${issue.message}`).join('\n'));
  }
}

/**
 * Reads the certificate, key and client CA bundle, and checks they make a usable TLS context
 * (parseable PEM, a key that matches the certificate). Throws TlsMaterialError naming the option.
 */
export async function readTlsMaterial(tls: TlsConfig): Promise<TlsMaterial> {
  const issues: ConfigIssue[] = [];
  const contents = new Map<string, Buffer>();
  for (const [option, path] of tlsFiles(tls)) {
    try {
      contents.set(option, await readFile(path));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      issues.push({
        path: formatKeyPath(['server', 'tls', option]),
        message: `cannot read ${path}: ${code}`,
      });
    }
  }
  if (issues.length > 0) throw new TlsMaterialError(issues);
  const ca = contents.get('client_ca_bundle');
  const material: TlsMaterial = {
    cert: contents.get('server_certificate_bundle') as Buffer,
    key: contents.get('server_private_key') as Buffer,
    ...(ca === undefined ? {} : { ca }),
  };
  try {
    createSecureContext(secureContextOptions(material));
  } catch (error) {
    throw new TlsMaterialError([
      { path: 'server.tls', message: `unusable certificate or key: ${(error as Error).message}` },
    ]);
  }
  return material;
}

function secureContextOptions(material: TlsMaterial): SecureContextOptions {
  return {
    cert: material.cert,
    key: material.key,
    ...(material.ca === undefined ? {} : { ca: material.ca }),
  };
}

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * An HTTPS server with the limits and handlers of `plain` (a server from createHttpServer).
 * With a client CA bundle, clients are asked for a certificate but not required to present one:
 * clients without one authenticate otherwise, and one that does not verify is judged by the
 * authentication chain (it is not accepted), not by a failed handshake.
 */
export function createTlsServer(plain: HttpServer, material: TlsMaterial, logger: Logger): HttpsServer {
  const secure = createHttpsServer({
    ...secureContextOptions(material),
    requestCert: material.ca !== undefined,
    rejectUnauthorized: false,
    maxHeaderSize: MAX_HEADER_SIZE,
    requestTimeout: plain.requestTimeout,
    headersTimeout: plain.headersTimeout,
    keepAliveTimeout: plain.keepAliveTimeout,
    connectionsCheckingInterval: (plain as unknown as { connectionsCheckingInterval: number })
      .connectionsCheckingInterval,
    noDelay: true,
  });
  for (const listener of plain.listeners('request')) secure.on('request', listener as RequestListener);
  for (const listener of plain.listeners('clientError')) {
    secure.on('clientError', listener as (error: Error, socket: unknown) => void);
  }
  secure.on('tlsClientError', (error: NodeJS.ErrnoException) => {
    logger.debug('TLS handshake failed', { code: error.code, reason: error.message });
  });
  return secure;
}

/** Installs new material on a running server: new connections use it, open ones keep theirs. */
export function applyTlsMaterial(server: HttpsServer, material: TlsMaterial): void {
  server.setSecureContext(secureContextOptions(material));
  // Read per connection, so turning mTLS on or off takes effect for the next handshake.
  (server as HttpsServer & { requestCert: boolean }).requestCert = material.ca !== undefined;
}

export interface TlsReloader {
  /** The configuration changed: watch its files and apply them if they differ. */
  update(tls: TlsConfig): void;
  close(): void;
}

export interface TlsReloaderOptions {
  /** Stat poll period, for changes the directory watch misses. Default 1000 ms. */
  readonly pollIntervalMs?: number;
  /** Quiet time after the last change before the files are read. Default 100 ms. */
  readonly debounceMs?: number;
}

/**
 * Reloads the certificate, key and client CA bundle when their files change (a renewed
 * certificate, a Kubernetes secret update), without a restart and without touching open
 * connections. The directories are watched (renames, symlink swaps) and the files' stats polled;
 * a change is applied only when the new set reads and forms a valid context, so a half-written
 * renewal is skipped until its last file lands.
 */
export function watchTlsFiles(
  server: HttpsServer,
  initial: { readonly tls: TlsConfig; readonly material: TlsMaterial },
  logger: Logger,
  options: TlsReloaderOptions = {},
): TlsReloader {
  let tls = initial.tls;
  let closed = false;
  let applied = contentKey(initial.material);
  let lastStats = '';
  let watchers: FSWatcher[] = [];
  let debounce: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const paths = () => tlsFiles(tls).map(([, path]) => resolve(path));

  const reload = async () => {
    let material: TlsMaterial;
    try {
      material = await readTlsMaterial(tls);
    } catch (error) {
      const issues =
        error instanceof TlsMaterialError ? error.issues : [{ path: 'server.tls', message: String(error) }];
      logger.warn('TLS files changed but cannot be used yet; keeping the current certificate', { issues });
      return;
    }
    const fingerprint = contentKey(material);
    if (closed || fingerprint === applied) return;
    applyTlsMaterial(server, material);
    applied = fingerprint;
    logger.info('TLS certificate reloaded', { certificate: tls.server_certificate_bundle });
  };

  const schedule = () => {
    if (closed) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      running = running.then(reload);
    }, options.debounceMs ?? 100);
    debounce.unref();
  };

  const watchDirectories = () => {
    for (const watcher of watchers) watcher.close();
    watchers = [];
    for (const directory of new Set(paths().map((path) => dirname(path)))) {
      try {
        const watcher = watch(directory, { persistent: false }, () => schedule());
        watcher.on('error', () => watcher.close());
        watchers.push(watcher);
      } catch {
        // The poll below still notices changes.
      }
    }
  };

  const poll = setInterval(() => {
    void statKey(paths()).then((key) => {
      if (key === lastStats) return;
      lastStats = key;
      schedule();
    });
  }, options.pollIntervalMs ?? 1000);
  poll.unref();

  void statKey(paths()).then((key) => {
    lastStats = key;
  });
  watchDirectories();

  return {
    update(next) {
      const before = JSON.stringify(tlsFiles(tls));
      tls = next;
      if (JSON.stringify(tlsFiles(next)) !== before) {
        watchDirectories();
        schedule();
      }
    },
    close() {
      closed = true;
      clearTimeout(debounce);
      clearInterval(poll);
      for (const watcher of watchers) watcher.close();
      watchers = [];
    },
  };
}

function contentKey(material: TlsMaterial): string {
  const hash = createHash('sha256');
  for (const part of [material.cert, material.key, material.ca ?? Buffer.alloc(0)]) {
    hash.update(String(part.length)).update(':').update(part);
  }
  return hash.digest('hex');
}

async function statKey(paths: readonly string[]): Promise<string> {
  const parts = await Promise.all(
    paths.map(async (path) => {
      try {
        const stats = await stat(path);
        return `${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
      } catch (error) {
        return `error:${(error as NodeJS.ErrnoException).code ?? 'unknown'}`;
      }
    }),
  );
  return parts.join('|');
}
