/**
 * The web UI scenario: 10,000 namespaces holding 100,000 tags (plus one namespace of 10,000 tags),
 * seeded straight into an fs store (namespace-seed.ts), `angos server` with `[ui] enabled`, and
 * Debian's Chromium headless loading each page of the UI again and again. The figure per page is
 * its first meaningful paint: from the navigation's start to the first frame in which the page's
 * data is on screen (a row of its table, an entry of the tree), p50 and p95 over the loads, the
 * first (cold) load apart. Also the API requests each load made (one per page of data, never one
 * per tag) and the bundle's size, raw and gzip (as registry-api serves it).
 * A benchmark, not a test: it asserts only that each page showed its data.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { openStores } from '@angos/storage';
import { repoRoot, startAngos } from '@angos/test-support';
import { type Browser, chromium, type Page } from 'playwright-core';
import { LARGE_NAMESPACE, seedManifests, seedNamespaceName, seedNamespaces } from './namespace-seed.js';
import { percentile } from './stats.js';

export const WEB_UI_SCENARIO = 'web ui';

export interface WebUiOptions {
  readonly namespaces: number;
  readonly tagsPerNamespace: number;
  readonly largeNamespaceTags: number;
  /** Loads per page after the first. */
  readonly loads: number;
  readonly workDir: string;
  readonly chromium: string;
  readonly log: (line: string) => void;
}

export interface PageFigures {
  readonly page: string;
  readonly path: string;
  readonly coldMs: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  /** API requests (`/v2/…`) of one load, the most over the loads. */
  readonly apiRequests: number;
}

export interface BundleFigures {
  readonly files: { readonly name: string; readonly raw: number; readonly gzip: number }[];
  readonly raw: number;
  readonly gzip: number;
}

export interface WebUiFigures {
  readonly namespaces: number;
  readonly tags: number;
  readonly seedSeconds: number;
  readonly loads: number;
  readonly pages: PageFigures[];
  readonly bundle: BundleFigures;
}

/** Each page of the UI, at a deep link, and what is on screen once its data is. */
function pagesToLoad(
  indexDigest: string,
  namespaces: number,
  largeTags: number,
): { page: string; path: string; ready: string }[] {
  const first = seedNamespaceName(0);
  const many = (count: number) => count.toLocaleString('en');
  return [
    { page: 'namespace tree (root, 100 prefixes)', path: '/', ready: '[role=tree] > li' },
    {
      page: `search (flat, over ${many(namespaces)} namespaces)`,
      path: '/search?q=app-999',
      ready: 'main table tbody tr',
    },
    { page: 'namespace: tags by name', path: `/n/${first}`, ready: '[data-testid=tags] tbody tr' },
    {
      page: `namespace of ${many(largeTags)} tags: newest first`,
      path: `/n/${LARGE_NAMESPACE}?sort=pushed&order=desc`,
      ready: '[data-testid=tags] tbody tr',
    },
    {
      page: `namespace of ${many(largeTags)} tags: revisions`,
      path: `/n/${LARGE_NAMESPACE}?tab=revisions`,
      ready: '[data-testid=revisions] tbody tr',
    },
    {
      page: 'manifest (index)',
      path: `/n/${first}/m/${indexDigest}`,
      ready: '[data-testid=platforms] tbody tr',
    },
    { page: 'uploads', path: `/uploads?ns=${first}`, ready: '[data-testid=uploads] tbody tr' },
    { page: 'jobs', path: '/jobs', ready: '[data-testid=jobs] tbody tr' },
  ];
}

/**
 * Run before any script of the page (injected by the browser, so the page's CSP does not apply;
 * a string because this package has no DOM types): watch every
 * frame for `selector` and keep the time of the first frame that has it; performance.now() counts
 * from the navigation's start.
 */
function paintProbe(selector: string): string {
  return `(() => {
    const check = () => {
      if (document.querySelector(${JSON.stringify(selector)}) !== null) window.__paint = performance.now();
      else requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  })();`;
}

/**
 * The time the probe recorded, asked from here every 10 ms: page.waitForFunction would poll with
 * code the page's Content-Security-Policy (no 'unsafe-eval') refuses to run.
 */
async function paintTime(page: Page): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ms = await page.evaluate(() => (globalThis as { __paint?: number }).__paint);
    if (ms !== undefined) return ms;
    if (Date.now() > deadline) throw new Error(`${page.url()} showed no data in 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function firstPaint(page: Page, url: string): Promise<{ ms: number; apiRequests: number }> {
  let apiRequests = 0;
  const count = (request: { url(): string }) => {
    if (new URL(request.url()).pathname.startsWith('/v2/')) apiRequests++;
  };
  page.on('request', count);
  try {
    await page.goto(url);
    const ms = await paintTime(page);
    // Settle: a request the page makes after its data is painted still counts.
    await page.waitForLoadState('networkidle');
    return { ms, apiRequests };
  } finally {
    page.off('request', count);
  }
}

async function measurePage(
  browser: Browser,
  base: string,
  target: { page: string; path: string; ready: string },
  loads: number,
): Promise<PageFigures> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    await context.addInitScript({ content: paintProbe(target.ready) });
    const page = await context.newPage();
    const cold = await firstPaint(page, base + target.path);
    const times: number[] = [];
    let apiRequests = cold.apiRequests;
    for (let i = 0; i < loads; i++) {
      const load = await firstPaint(page, base + target.path);
      times.push(load.ms);
      apiRequests = Math.max(apiRequests, load.apiRequests);
    }
    return {
      page: target.page,
      path: target.path,
      coldMs: cold.ms,
      p50Ms: percentile(times, 50),
      p95Ms: percentile(times, 95),
      apiRequests,
    };
  } finally {
    await context.close();
  }
}

/** The built UI's files, raw and gzip at the level registry-api serves them with. */
export async function bundleFigures(): Promise<BundleFigures> {
  const dist = join(repoRoot(), 'ui', 'dist');
  const names = [
    'index.html',
    ...(await readdir(join(dist, 'assets'))).map((name) => `assets/${name}`).sort(),
  ];
  const files = await Promise.all(
    names.map(async (name) => {
      const bytes = await readFile(join(dist, name));
      return { name, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
    }),
  );
  return {
    files,
    raw: files.reduce((sum, file) => sum + file.raw, 0),
    gzip: files.reduce((sum, file) => sum + file.gzip, 0),
  };
}

export async function benchWebUi(options: WebUiOptions): Promise<WebUiFigures> {
  const rootDir = join(options.workDir, 'web-ui-data');
  await rm(rootDir, { recursive: true, force: true });
  const started = Date.now();
  const stores = await openStores({
    blob: { kind: 'fs', rootDir, syncToDisk: false },
    metadata: { kind: 'fs', rootDir, syncToDisk: false },
  });
  try {
    await seedNamespaces(
      { metadata: stores.metadata, blobs: stores.blobs },
      {
        namespaces: options.namespaces,
        tagsPerNamespace: options.tagsPerNamespace,
        largeNamespaceTags: options.largeNamespaceTags,
        onProgress: (done) => {
          if (done % 2000 === 0) options.log(`  seeded ${done} namespaces`);
        },
      },
    );
  } finally {
    await stores.close?.();
  }
  const seedSeconds = (Date.now() - started) / 1000;
  options.log(`  seeded in ${seedSeconds.toFixed(0)} s`);

  const angos = await startAngos({
    mode: 'server',
    rootDir,
    config: '[ui]\nenabled = true\nname = "Angos bench"\n',
    env: { RUST_LOG: 'warn' },
    startTimeoutMs: 120_000,
  });
  // An open upload, so that the uploads page has a row to show.
  const first = seedNamespaceName(0);
  await fetch(`${angos.url}/v2/${first}/blobs/uploads/`, { method: 'POST' });
  const browser = await chromium.launch({
    executablePath: options.chromium,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const indexDigest = `sha256:${seedManifests().index.digest.hex}`;
    const pages: PageFigures[] = [];
    for (const target of pagesToLoad(indexDigest, options.namespaces, options.largeNamespaceTags)) {
      const figures = await measurePage(browser, angos.url, target, options.loads);
      options.log(
        `  ${figures.page}: cold ${figures.coldMs.toFixed(0)} ms, p50 ${figures.p50Ms.toFixed(0)} ms, p95 ${figures.p95Ms.toFixed(0)} ms, ${figures.apiRequests} API requests`,
      );
      pages.push(figures);
    }
    return {
      namespaces: options.namespaces + 1,
      tags: options.namespaces * options.tagsPerNamespace + options.largeNamespaceTags,
      seedSeconds,
      loads: options.loads,
      pages,
      bundle: await bundleFigures(),
    };
  } finally {
    await browser.close();
    await angos.stop();
    await rm(rootDir, { recursive: true, force: true });
  }
}

const kib = (bytes: number) => (bytes / 1024).toFixed(1);

export function webUiTable(figures: WebUiFigures): string {
  const rows = figures.pages.map(
    (page) =>
      `| ${page.page} | \`${page.path}\` | ${page.coldMs.toFixed(0)} | ${page.p50Ms.toFixed(0)} | ${page.p95Ms.toFixed(0)} | ${page.apiRequests} |`,
  );
  const bundle = figures.bundle.files.map(
    (file) => `| \`${file.name}\` | ${kib(file.raw)} | ${kib(file.gzip)} |`,
  );
  return [
    '| page | deep link | cold load (ms) | p50 (ms) | p95 (ms) | API requests per load |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    '| bundle file | raw (KiB) | gzip (KiB) |',
    '| --- | --- | --- |',
    ...bundle,
    `| **total** | **${kib(figures.bundle.raw)}** | **${kib(figures.bundle.gzip)}** |`,
  ].join('\n');
}
