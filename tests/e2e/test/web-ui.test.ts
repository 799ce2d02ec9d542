import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AngosInstance, OciClient, startAngos } from '@angos/test-support';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshotDir } from './browser.js';
import { MODES, skipWithoutClients } from './fixture.js';
import { pushContent, type Seeded, seedFailedJob } from './web-ui-content.js';

/** alice-secret, for both users (argon2id with test-sized costs). */
const PASSWORD_HASH =
  '$argon2id$v=19$m=64,t=1,p=1$bC87hUMfbQpL2Jjl8j+RxQ$OOKrstt+HXHBcNpma8p9Sxx9K6GmHQ9hEuXjr6aomp8';
const PASSWORD = 'alice-secret';

/** alice may do anything; bob anything but read or list the namespaces under secret/. */
const CONFIG = `
[auth.identity.alice]
username = "alice"
password = "${PASSWORD_HASH}"

[auth.identity.bob]
username = "bob"
password = "${PASSWORD_HASH}"

[global.access_policy]
default = "deny"
rules = [
  "identity.username == 'alice'",
  "identity.username == 'bob' && !(has(request.namespace) && request.namespace.startsWith('secret'))",
]

[repository."team"]

[ui]
enabled = true
name = "Angos e2e"
`;

/**
 * The web UI in Debian's Chromium against both process layouts: logging in with Basic auth,
 * browsing, a multi-platform index with its signature and SBOM, deleting a tag, cancelling an
 * upload, retrying a failed job, and a namespace the policy hides from one user.
 */
describe.skipIf(skipWithoutClients('chromium')).each(MODES)('web UI against angos %s', (mode) => {
  let work = '';
  let angos: AngosInstance;
  let browser: Browser;
  let alice: BrowserContext;
  let page: Page;
  let seeded: Seeded;
  let failedJob = '';
  let shots = '';
  let client: OciClient;

  const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'angos-web-ui-'));
    const rootDir = join(work, 'data');
    failedJob = await seedFailedJob(rootDir);
    [angos, browser] = await Promise.all([startAngos({ mode, rootDir, config: CONFIG }), launchChromium()]);
    client = new OciClient(angos.url, {
      authorization: `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`,
    });
    seeded = await pushContent(client, work, `web-ui-${mode}`);
    shots = await screenshotDir(mode);
    alice = await browser.newContext({
      httpCredentials: { username: 'alice', password: PASSWORD },
      viewport: { width: 1280, height: 800 },
      colorScheme: 'light',
    });
    alice.setDefaultTimeout(15_000);
    page = await alice.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await angos?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('challenges an anonymous visitor with Basic', async () => {
    // Headless Chromium has no login dialog to show: the challenge is read from the answer.
    const anonymous = await browser.newContext();
    try {
      for (const path of ['/', '/n/team/app', '/v2/_ext/_ui/config']) {
        const response = await anonymous.request.get(`${angos.url}${path}`);
        expect(response.status(), path).toBe(401);
        expect(response.headers()['www-authenticate'], path).toBe('Basic realm="Angos"');
      }
    } finally {
      await anonymous.close();
    }
  });

  it('shows the namespace tree, expands a prefix lazily, opens a namespace', async () => {
    await page.goto(`${angos.url}/`);
    await expect.poll(() => page.title()).toBe('Angos e2e');
    await page.getByTestId('repositories').getByText('team', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Expand team' }).click();
    await page.getByRole('link', { name: 'app', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Expand secret' }).waitFor();
    await shot('tree');
    await page.getByRole('link', { name: 'app', exact: true }).click();
    await page.waitForURL(/\/n\/team\/app$/);
    const tags = page.getByTestId('tags');
    await tags.getByRole('link', { name: 'v1' }).waitFor();
    await tags.getByRole('link', { name: 'v2' }).waitFor();
    expect(await tags.textContent()).toContain('linux/amd64, linux/arm64');
    await shot('namespace');
    await page.getByRole('link', { name: 'Revisions' }).click();
    await page.waitForURL(/\/n\/team\/app\?tab=revisions$/);
    await page.getByTestId('revisions').getByText('signature', { exact: true }).waitFor();
    await shot('revisions');
  });

  it('shows a multi-platform index with its platforms, signature and SBOM, and survives a reload', async () => {
    await page.goto(`${angos.url}/n/team/app`);
    await page.getByTestId('tags').getByRole('link', { name: 'v1' }).click();
    await page.waitForURL(new RegExp(`/n/team/app/m/${seeded.index}$`));
    const platforms = page.getByTestId('platforms');
    await platforms.getByText('linux/arm64').waitFor();
    expect(await platforms.textContent()).toContain('linux/amd64');
    const referrers = page.getByTestId('referrers');
    await referrers.getByText('Signature', { exact: true }).waitFor();
    await referrers.getByText('SBOM', { exact: true }).waitFor();
    expect(await page.getByTestId('pull-command').textContent()).toBe(
      `docker pull ${angos.host}/team/app:v1`,
    );
    await page.getByLabel('crane').check();
    expect(await page.getByTestId('pull-command').textContent()).toBe(
      `crane pull ${angos.host}/team/app:v1 app.tar`,
    );
    await page.getByLabel('docker').check();
    await shot('manifest');
    await page.reload();
    await page.getByTestId('referrers').getByText('Signature', { exact: true }).waitFor();

    // A referrer's own page names the index as its subject.
    await page.goto(`${angos.url}/n/team/app/m/${seeded.signature}`);
    await page.getByRole('link', { name: seeded.index }).waitFor();
  });

  it('deletes a tag only after confirming, and Escape cancels', async () => {
    await page.goto(`${angos.url}/n/team/app`);
    const dialog = page.getByRole('dialog');
    await page.getByRole('button', { name: 'Delete tag v2' }).click();
    await dialog.waitFor();
    await shot('confirm-delete');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect((await client.tags('team/app')).tags).toContain('v2');

    // The dialog opens on Cancel, the safe choice; Tab moves to the delete button, Enter presses it.
    await page.getByRole('button', { name: 'Delete tag v2' }).click();
    await dialog.waitFor();
    expect(
      await dialog.getByRole('button', { name: 'Cancel' }).evaluate((button) => button.matches(':focus')),
    ).toBe(true);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await dialog.waitFor({ state: 'hidden' });
    await page.getByTestId('tags').getByRole('link', { name: 'v2' }).waitFor({ state: 'detached' });
    expect((await client.tags('team/app')).tags).toEqual(['v1']);
  });

  it('cancels an upload in progress', async () => {
    await page.goto(`${angos.url}/uploads?ns=team/app`);
    const uploads = page.getByTestId('uploads');
    await uploads.getByText(seeded.uploadId).waitFor();
    await shot('uploads');
    await page.getByRole('button', { name: `Cancel upload ${seeded.uploadId}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel upload' }).click();
    await uploads.getByText(seeded.uploadId).waitFor({ state: 'detached' });
    expect((await client.request('GET', `/v2/team/app/blobs/uploads/${seeded.uploadId}`)).status).toBe(404);
  });

  it('retries a failed job', async () => {
    await page.goto(`${angos.url}/jobs?queue=replication&state=failed`);
    await page.getByTestId('jobs').getByText(failedJob).waitFor();
    await shot('jobs');
    const retried = page.waitForResponse((response) => response.url().endsWith(`/${failedJob}/retry`));
    await page.getByRole('button', { name: `Retry job ${failedJob}` }).click();
    expect((await retried).status()).toBe(202);
    await page.getByRole('status').getByText('queued again').waitFor();
  });

  it('searches with / and switches to the dark theme', async () => {
    await page.goto(`${angos.url}/`);
    await page.getByRole('tree').waitFor();
    await page.keyboard.press('/');
    await page.keyboard.type('app');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/search\?q=app$/);
    await page.getByRole('link', { name: 'team/app' }).waitFor();
    await shot('search');
    await page.getByRole('button', { name: 'Switch to dark theme' }).click();
    expect(await page.locator('html').getAttribute('data-theme')).toBe('dark');
    await page.goto(`${angos.url}/n/team/app/m/${seeded.index}`);
    await page.getByTestId('referrers').waitFor();
    await shot('manifest-dark');
  });

  it('hides a namespace from a user whose policy forbids it', async () => {
    const bob = await browser.newContext({ httpCredentials: { username: 'bob', password: PASSWORD } });
    try {
      const bobPage = await bob.newPage();
      bobPage.setDefaultTimeout(15_000);
      await bobPage.goto(`${angos.url}/`);
      await bobPage.getByRole('button', { name: 'Expand team' }).waitFor();
      expect(await bobPage.getByRole('tree').textContent()).not.toContain('secret');
      await bobPage.goto(`${angos.url}/search?q=vault`);
      await bobPage.getByText('No namespace you may read contains').waitFor();
      await bobPage.goto(`${angos.url}/n/secret/vault`);
      await bobPage.getByRole('alert').waitFor();
      expect(await bobPage.getByRole('alert').textContent()).toContain('Not allowed');
    } finally {
      await bob.close();
    }
  });
});
