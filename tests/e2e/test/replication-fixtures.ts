/**
 * What the replication tests share: pushing small images, reading a tag's digest, checking that a
 * manifest's content is held, and the `[[repository."nginx".downstream]]` tables of a peer.
 */
import { randomBytes } from 'node:crypto';
import { eventually, type OciClient, sha256 } from '@angos/test-support';
import { expect } from 'vitest';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true; throws with `what` when `timeoutMs` passes. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  await eventually(check, { what, timeoutMs, intervalMs: 200 });
}

/** Uploads a config (with `label`) and `layers` random layers; the manifest's JSON text. */
async function imageManifest(client: OciClient, repo: string, label: string, layers = 1): Promise<string> {
  const config = Buffer.from(JSON.stringify({ label, architecture: 'amd64', os: 'linux' }));
  const configDigest = await client.pushBlob(repo, config);
  const descriptors = [];
  for (let i = 0; i < layers; i++) {
    const layer = randomBytes(4096);
    descriptors.push({
      mediaType: OCI_LAYER,
      digest: await client.pushBlob(repo, layer),
      size: layer.length,
    });
  }
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
    layers: descriptors,
  });
}

/** Pushes a small image (a config and a layer unique to `label`) and returns its digest. */
export async function pushImage(
  client: OciClient,
  repo: string,
  tag: string,
  label: string,
): Promise<string> {
  const pushed = await client.pushManifest(repo, tag, await imageManifest(client, repo, label), OCI_MANIFEST);
  expect(pushed.status, pushed.text).toBe(201);
  return pushed.digest as string;
}

/**
 * Pushes an index of `children` images, each of `layers` layers (children by digest, then the
 * index by tag), and returns the index's digest.
 */
export async function pushIndex(
  client: OciClient,
  repo: string,
  tag: string,
  options: { children: number; layers: number },
): Promise<string> {
  const manifests = [];
  for (let i = 0; i < options.children; i++) {
    const manifest = await imageManifest(client, repo, `${tag} child ${i}`, options.layers);
    const digest = sha256(manifest);
    const byDigest = await client.pushManifest(repo, digest, manifest, OCI_MANIFEST);
    expect(byDigest.status, byDigest.text).toBe(201);
    manifests.push({ mediaType: OCI_MANIFEST, digest, size: Buffer.byteLength(manifest) });
  }
  const index = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });
  const pushed = await client.pushManifest(repo, tag, index, OCI_INDEX);
  expect(pushed.status, pushed.text).toBe(201);
  return pushed.digest as string;
}

/** What `tag` names on `client`, or null when it names nothing. */
export async function digestOf(client: OciClient, repo: string, tag: string): Promise<string | null> {
  const response = await client.request('HEAD', `/v2/${repo}/manifests/${tag}`, {
    headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` },
  });
  await response.arrayBuffer();
  return response.status === 200 ? response.headers.get('docker-content-digest') : null;
}

interface Descriptor {
  readonly digest: string;
}

/**
 * What the manifest `reference` names that `client` cannot serve: each blob (config, layers) and
 * each child manifest of an index, and the blobs of those children, by digest. Null when the
 * manifest itself is not there.
 */
export async function missingContent(
  client: OciClient,
  repo: string,
  reference: string,
): Promise<string[] | null> {
  const manifest = await client.getManifest(repo, reference);
  if (manifest.status !== 200) return null;
  const parsed = JSON.parse(manifest.body.toString('utf8')) as {
    config?: Descriptor;
    layers?: Descriptor[];
    manifests?: Descriptor[];
  };
  const missing: string[] = [];
  for (const blob of [...(parsed.config ? [parsed.config] : []), ...(parsed.layers ?? [])]) {
    if ((await client.headBlob(repo, blob.digest)) !== 200) missing.push(blob.digest);
  }
  for (const child of parsed.manifests ?? []) {
    const gaps = await missingContent(client, repo, child.digest);
    missing.push(...(gaps === null ? [child.digest] : gaps));
  }
  return missing;
}

/** The manifest `digest` names is there with all its content (content before manifest). */
export async function holdsContent(client: OciClient, repo: string, digest: string): Promise<boolean> {
  return (await missingContent(client, repo, digest))?.length === 0;
}

export interface Peer {
  readonly name: string;
  readonly url: string;
  readonly mode?: string;
  readonly username?: string;
  readonly password?: string;
}

/** `[repository."nginx"]`, open to all, with one downstream table per peer. */
export function peerConfig(peers: readonly Peer[]): string {
  const downstreams = peers.map((peer) =>
    [
      '[[repository."nginx".downstream]]',
      ...Object.entries(peer).map(([key, value]) => `${key} = ${JSON.stringify(value)}`),
    ].join('\n'),
  );
  return [
    '[repository."nginx"]',
    '[repository."nginx".access_policy]\ndefault = "allow"',
    ...downstreams,
  ].join('\n\n');
}
