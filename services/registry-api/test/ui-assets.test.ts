import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { uiAssetsDirectory } from '@angos/ui';
import { afterEach, describe, expect, it } from 'vitest';
import { type Api, startApi } from './harness.js';

/** The built web UI (@angos/ui's dist/, built before this package's tests run). */
const INDEX = await readFile(join(uiAssetsDirectory, 'index.html'), 'utf8');
const SCRIPT = /src="(\/assets\/[^"]+\.js)"/.exec(INDEX)?.[1] ?? '';

let api: Api;
afterEach(async () => api?.close());

const UI_ON = '[ui]\nenabled = true\n';

describe('web UI files (ui-asset)', () => {
  it('answers the page for / and for deep links, never cached, with a content security policy', async () => {
    api = await startApi(UI_ON);
    for (const path of ['/', '/index.html', '/n/team/app', '/n/team/app/m/sha256:abc', '/jobs?queue=cache']) {
      const reply = await api.send('GET', path);
      expect(reply.status, path).toBe(200);
      expect(reply.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(reply.headers['cache-control']).toBe('no-cache');
      expect(reply.headers['content-security-policy']).toContain("script-src 'self'");
      expect(reply.headers['x-content-type-options']).toBe('nosniff');
      expect(reply.body.toString('utf8')).toBe(INDEX);
    }
  });

  it('serves hashed assets with their type, cached for a year, gzipped when asked, HEAD without a body', async () => {
    api = await startApi(UI_ON);
    expect(SCRIPT).toMatch(/^\/assets\/index-.+\.js$/);
    const plain = await api.send('GET', SCRIPT);
    expect(plain.status).toBe(200);
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(plain.headers['content-encoding']).toBeUndefined();
    const file = await readFile(join(uiAssetsDirectory, SCRIPT));
    expect(plain.body.equals(file)).toBe(true);

    const gzipped = await api.send('GET', SCRIPT, { headers: { 'accept-encoding': 'gzip, br' } });
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gzipped.headers.vary).toBe('Accept-Encoding');
    expect(gunzipSync(gzipped.body).equals(file)).toBe(true);

    const head = await api.send('HEAD', SCRIPT);
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(file.length);
    expect(head.body.length).toBe(0);

    const again = await api.send('GET', SCRIPT, { headers: { 'if-none-match': String(plain.headers.etag) } });
    expect(again.status).toBe(304);
  });

  it('answers 404 for a missing asset instead of the page', async () => {
    api = await startApi(UI_ON);
    const reply = await api.send('GET', '/assets/index-missing.js');
    expect(reply.status).toBe(404);
    expect(reply.json().errors[0].code).toBe('UNSUPPORTED');
  });

  it('never serves a file outside the built app, however the path is written', async () => {
    api = await startApi(UI_ON);
    const outside = await readFile(join(uiAssetsDirectory, '..', 'package.json'), 'utf8');
    for (const path of [
      '/../package.json',
      '/assets/../../package.json',
      '/%2e%2e/package.json',
      '/assets/%2e%2e/%2e%2e/package.json',
      '/assets/..%2f..%2fpackage.json',
      '//etc/passwd',
    ]) {
      const reply = await api.send('GET', path);
      expect(reply.body.toString('utf8'), path).not.toContain(outside.slice(0, 40));
      expect(reply.body.toString('utf8'), path).not.toContain('root:');
      expect([200, 404], path).toContain(reply.status);
    }
  });

  it('allows GET and HEAD only', async () => {
    api = await startApi(UI_ON);
    const reply = await api.send('POST', '/n/team/app', { body: 'x' });
    expect(reply.status).toBe(405);
    expect(reply.headers.allow).toBe('GET, HEAD');
  });

  it('keeps every path outside /v2/ unknown while [ui] is off', async () => {
    api = await startApi();
    for (const path of ['/', '/index.html', SCRIPT, '/n/team/app']) {
      const reply = await api.send('GET', path);
      expect(reply.status, path).toBe(404);
      expect(reply.json().errors[0].code).toBe('UNSUPPORTED');
    }
  });
});
