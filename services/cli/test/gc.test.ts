import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  baseConfig,
  freePort,
  type LongRunning,
  logRecords,
  runAngos,
  startAngos,
  useWorkspace,
  waitForHttp,
} from './helpers.js';

/**
 * Garbage collection as the CLI runs it: `angos server` in the background every `[gc]
 * interval_secs`, `angos scrub --blobs` one pass. A delete reclaims nothing by itself; a pass
 * reclaims a layer only once nothing has referenced it for `grace_period_secs`.
 */

const ws = useWorkspace();

const ALLOW = '[global.access_policy]\ndefault = "allow"\n';
const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** Pushes a one-layer image; returns the manifest and layer digests. */
async function pushImage(url: string, namespace: string, tag: string) {
  const config = Buffer.from(JSON.stringify({ os: 'linux', nonce: randomBytes(4).toString('hex') }));
  const layer = randomBytes(4096);
  for (const blob of [config, layer]) {
    const put = await fetch(`${url}/v2/${namespace}/blobs/uploads/?digest=${sha256(blob)}`, {
      method: 'POST',
      body: blob,
    });
    expect(put.status).toBe(201);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length },
      ],
    }),
  );
  const pushed = await fetch(`${url}/v2/${namespace}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  expect(pushed.status).toBe(201);
  return { manifest: sha256(manifest), layer: sha256(layer) };
}

const headBlob = async (url: string, namespace: string, digest: string) =>
  (await fetch(`${url}/v2/${namespace}/blobs/${digest}`, { method: 'HEAD' })).status;

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

/** `angos server` on the configuration's port; `url` answers once it returns. */
async function startServer(url: string): Promise<LongRunning> {
  const server = startAngos(['-c', ws().configPath, 'server']);
  await waitForHttp(`${url}/healthz`, server);
  return server;
}

describe('garbage collection from the CLI', () => {
  it('angos server reclaims a deleted image in the background, after the grace period', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    await ws().writeConfig(
      baseConfig(ws().dir, port, `${ALLOW}[gc]\ngrace_period_secs = 2\ninterval_secs = 1\n`),
    );
    const server = startAngos(['-c', ws().configPath, 'server']);
    await waitForHttp(`${url}/healthz`, server);

    const image = await pushImage(url, 'gc/app', 'v1');
    const deleted = await fetch(`${url}/v2/gc/app/manifests/${image.manifest}`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    // The delete itself reclaims nothing: the layer stays readable for the grace period.
    expect(await headBlob(url, 'gc/app', image.layer)).toBe(200);
    expect(await eventually(async () => (await headBlob(url, 'gc/app', image.layer)) === 404, 20_000)).toBe(
      true,
    );
    // The pass revokes the grant before it logs its summary: wait for the line, not just the 404.
    const revokingPassLogged = async () =>
      logRecords(server.output()).some(
        (record) =>
          record['message'] === 'garbage collection pass done' && Number(record['grantsRevoked']) > 0,
      );
    expect(await eventually(revokingPassLogged, 10_000)).toBe(true);
    expect(await server.stop()).toBe(0);
  }, 60_000);

  it('scrub --blobs reclaims only what is past the grace period, and --dry-run nothing', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const config = (grace: number) =>
      baseConfig(ws().dir, port, `${ALLOW}[gc]\ngrace_period_secs = ${grace}\ninterval_secs = 0\n`);
    await ws().writeConfig(config(3600));
    let server = await startServer(url);
    const kept = await pushImage(url, 'gc/app', 'kept');
    const dropped = await pushImage(url, 'gc/app', 'dropped');
    expect((await fetch(`${url}/v2/gc/app/manifests/${dropped.manifest}`, { method: 'DELETE' })).status).toBe(
      202,
    );
    // A repairing scrub is the directory's only writer with the memory lock: the server stops.
    expect(await server.stop()).toBe(0);

    // Within the grace period: nothing to reclaim.
    expect((await runAngos(['-c', ws().configPath, 'scrub', '--blobs'])).code).toBe(0);
    server = await startServer(url);
    expect(await headBlob(url, 'gc/app', dropped.layer)).toBe(200);

    // Past it (grace 0): a dry run (beside the server) reclaims nothing, a pass reclaims the
    // deleted image's layer only.
    await ws().writeConfig(config(0));
    expect((await runAngos(['-c', ws().configPath, 'scrub', '--blobs', '--dry-run'])).code).toBe(0);
    expect(await headBlob(url, 'gc/app', dropped.layer)).toBe(200);
    expect(await server.stop()).toBe(0);
    const pass = await runAngos(['-c', ws().configPath, 'scrub', '--blobs'], { env: { RUST_LOG: 'info' } });
    expect(pass.code, pass.stderr).toBe(0);
    expect(pass.stderr).toContain('blob scrub finished');
    server = await startServer(url);
    expect(await headBlob(url, 'gc/app', dropped.layer)).toBe(404);
    expect(await headBlob(url, 'gc/app', kept.layer)).toBe(200);
    expect((await fetch(`${url}/v2/gc/app/manifests/kept`)).status).toBe(200);
    expect(await server.stop()).toBe(0);
  }, 60_000);

  it('scrub --retention plans beside a running server, deletes what no rule keeps; --blobs then reclaims it', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const retention = `[global.retention_policy]\nrules = ["has(image.tag) && image.tag == 'kept'"]\n`;
    await ws().writeConfig(
      baseConfig(ws().dir, port, `${ALLOW}${retention}[gc]\ngrace_period_secs = 0\ninterval_secs = 0\n`),
    );
    let server = await startServer(url);
    const kept = await pushImage(url, 'retained/app', 'kept');
    const dropped = await pushImage(url, 'retained/app', 'dropped');
    const env = { RUST_LOG: 'info' };
    const actions = (stderr: string, message: string) =>
      logRecords(stderr)
        .filter((record) => record['message'] === message)
        .map(({ check, action, key }) => `${check} ${action} ${key}`);

    const dry = await runAngos(['-c', ws().configPath, 'scrub', '-r', '-d'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    const planned = actions(dry.stderr, 'would repair');
    expect(planned).toEqual([
      `retention delete-manifest retained/app/_manifests/revisions/sha256/${dropped.manifest.slice(7)}/link`,
    ]);
    expect((await fetch(`${url}/v2/retained/app/manifests/dropped`)).status).toBe(200);

    // The repairing run: with the memory lock, while no server writes the directory.
    expect(await server.stop()).toBe(0);
    const real = await runAngos(['-c', ws().configPath, 'scrub', '-r', '-b'], { env });
    expect(real.code, real.stderr).toBe(0);
    expect(actions(real.stderr, 'repaired')).toEqual(planned);
    server = await startServer(url);
    const status = async (path: string) => (await fetch(`${url}/v2/retained/app/${path}`)).status;
    expect(await status('manifests/dropped')).toBe(404);
    expect(await status(`manifests/${dropped.manifest}`)).toBe(404);
    expect(await status(`blobs/${dropped.layer}`)).toBe(404);
    expect((await fetch(`${url}/v2/retained/app/manifests/kept`)).status).toBe(200);
    expect(await headBlob(url, 'retained/app', kept.layer)).toBe(200);
    expect(await server.stop()).toBe(0);
  }, 60_000);

  it('scrub --retention refuses a rule that does not compile, naming it, before touching storage', async () => {
    const rules = `[global.retention_policy]\nrules = ["image.tag == 'a'", "image.pushed == 1"]\n`;
    await ws().writeConfig(baseConfig(ws().dir, await freePort(), `${ALLOW}${rules}`));
    const result = await runAngos(['-c', ws().configPath, 'scrub', '--retention']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('global.retention_policy.rules[1]');
  });
});
