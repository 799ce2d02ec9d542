import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Logger } from '@angos/observability';
import { OciError } from '@angos/oci';

/**
 * The web UI's files, served by registry-api when `[ui] enabled = true` (the `ui-asset` action).
 *
 * Every file of the built app is read into memory once, at the first request: the app is a few
 * hundred KiB. A request is answered only from that table, looked up by its exact path, so no path
 * (`..`, encoded or not) can name anything outside the built app. Paths under `/assets/` carry a
 * content hash in their names (Vite) and are cached for a year; a missing one is a 404, never the
 * page, which a browser would try to run as a script. Any other path is a page of the app (deep
 * links such as `/n/team/app`): `index.html`, never cached, so a new release is picked up at once.
 */

/** One file of the app, ready to send. */
interface Asset {
  readonly body: Buffer;
  /** The gzip encoding, when smaller. */
  readonly gzip: Buffer | undefined;
  readonly contentType: string;
  readonly etag: string;
  readonly cacheControl: string;
}

export interface UiAssets {
  /** Answers a GET or HEAD of a path outside `/v2/`. */
  serve(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void>;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

const IMMUTABLE = 'public, max-age=31536000, immutable';
const NO_CACHE = 'no-cache';
const ASSETS_PREFIX = '/assets/';

/**
 * The page may load its own scripts and styles and talk to its own origin only. Svelte sets some
 * styles inline (tree indentation), hence 'unsafe-inline' for styles, never for scripts.
 */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

function assetFor(path: string, body: Buffer): Asset {
  const contentType = CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
  const compressible = /^(text\/|application\/json|image\/svg)/.test(contentType);
  const gzip = compressible ? gzipSync(body, { level: 9 }) : undefined;
  return {
    body,
    gzip: gzip !== undefined && gzip.length < body.length ? gzip : undefined,
    contentType,
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
    cacheControl: path.startsWith(ASSETS_PREFIX) ? IMMUTABLE : NO_CACHE,
  };
}

/** Reads the built app under `directory` into a table keyed by URL path (`/index.html`, `/assets/…`). */
async function loadAssets(directory: string): Promise<Map<string, Asset>> {
  const table = new Map<string, Asset>();
  for (const file of await filesUnder(directory)) {
    const urlPath = `/${relative(directory, file).split(sep).join('/')}`;
    table.set(urlPath, assetFor(urlPath, await readFile(file)));
  }
  if (!table.has('/index.html')) throw new Error(`no index.html in ${directory}: is @angos/ui built?`);
  return table;
}

function acceptsGzip(req: IncomingMessage): boolean {
  return /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
}

function send(req: IncomingMessage, res: ServerResponse, asset: Asset, isPage: boolean): void {
  const headers: Record<string, string | number> = {
    'content-type': asset.contentType,
    'cache-control': asset.cacheControl,
    etag: asset.etag,
    vary: 'Accept-Encoding',
    'x-content-type-options': 'nosniff',
    ...(isPage ? PAGE_HEADERS : {}),
  };
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const gzip = asset.gzip !== undefined && acceptsGzip(req) ? asset.gzip : undefined;
  const body = gzip ?? asset.body;
  if (gzip !== undefined) headers['content-encoding'] = 'gzip';
  headers['content-length'] = body.length;
  res.writeHead(200, headers);
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

/**
 * The UI's files from `directory` (the `dist/` of @angos/ui), loaded at the first request. When
 * they cannot be loaded (the UI was never built) every UI path answers 404 and the reason is
 * logged (not told to the client: it names server paths); the next request tries again.
 */
export function createUiAssets(directory: string, logger: Logger): UiAssets {
  let loading: Promise<Map<string, Asset>> | undefined;
  const table = () => {
    loading ??= loadAssets(directory).catch((error: unknown) => {
      loading = undefined;
      throw error;
    });
    return loading;
  };
  return {
    async serve(req, res, pathname) {
      let assets: Map<string, Asset>;
      try {
        assets = await table();
      } catch (error) {
        logger.error('web UI files could not be read', { directory, error });
        throw new OciError('ROUTE_UNKNOWN');
      }
      const file = pathname === '/' || pathname === '/index.html' ? undefined : assets.get(pathname);
      if (file !== undefined) {
        send(req, res, file, file.contentType.startsWith('text/html'));
        return;
      }
      if (pathname.startsWith(ASSETS_PREFIX)) throw new OciError('ROUTE_UNKNOWN');
      send(req, res, assets.get('/index.html')!, true);
    },
  };
}
