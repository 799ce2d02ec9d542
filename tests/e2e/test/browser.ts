import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

/**
 * Debian's Chromium (package `chromium`, which .ci/run installs), driven by playwright-core: no
 * browser download. ANGOS_CHROMIUM names another binary.
 */
export const CHROMIUM = process.env['ANGOS_CHROMIUM'] ?? '/usr/bin/chromium';

/** Where the browser suite writes its screenshots (ignored by git; CI keeps it as an artifact). */
export const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts', 'web-ui');

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // Root in CI containers has no user namespace sandbox to drop into; the pages are our own.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    timeout: 30_000,
  });
}

export async function screenshotDir(name: string): Promise<string> {
  const dir = join(ARTIFACTS, name);
  await mkdir(dir, { recursive: true });
  return dir;
}
