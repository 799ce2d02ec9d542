import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type DigestParts, keyFor } from '@angos/storage';

/**
 * A large healthy fs store for the scrub benchmark, written straight in the storage layout
 * (libs/storage keys.ts) rather than pushed over HTTP: a push of 100,000 manifests would take
 * longer than the scrub it measures. What a push leaves (libs/registry): per namespace a config
 * and a layer blob, each granted (`_layers/…/link`) and indexed with the namespace's `layer` hold
 * and a `ref:` of every manifest using it; per manifest its bytes, its revision link (media type
 * and size), a tag, and its index entry (`manifest`).
 */

export interface StoreShape {
  readonly namespaces: number;
  readonly manifestsPerNamespace: number;
}

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const CONFIG = 'application/vnd.oci.image.config.v1+json';
const LAYER = 'application/vnd.oci.image.layer.v1.tar';
/** Files written at once: enough to keep the disk busy, few enough for a small machine. */
const CONCURRENCY = 64;

function digestOf(data: Buffer | string): DigestParts {
  return { algorithm: 'sha256', hex: createHash('sha256').update(data).digest('hex') };
}

const format = (digest: DigestParts) => `${digest.algorithm}:${digest.hex}`;

/** A link as libs/registry encodeLink writes it. */
function link(digest: DigestParts, extra: { mediaType?: string; size?: number } = {}): string {
  return JSON.stringify({
    digest: format(digest),
    ...(extra.mediaType !== undefined && { media_type: extra.mediaType }),
    ...(extra.size !== undefined && { size: extra.size }),
    created_at: '2026-01-01T00:00:00.000Z',
  });
}

/** `bench-<i mod 100>/repo-<i>`: two levels, as registries are usually organised. */
export function namespaceName(index: number): string {
  return `bench-${index % 100}/repo-${index}`;
}

/** The files of one namespace, as path → bytes. */
function namespaceFiles(index: number, perNamespace: number): Array<[string, string | Buffer]> {
  const namespace = namespaceName(index);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', namespace }));
  const layer = Buffer.from(`layer of ${namespace}`);
  const configDigest = digestOf(config);
  const layerDigest = digestOf(layer);
  const files: Array<[string, string | Buffer]> = [];
  const refs: string[] = [];
  for (let m = 0; m < perNamespace; m++) {
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST,
        config: { mediaType: CONFIG, digest: format(configDigest), size: config.length },
        layers: [{ mediaType: LAYER, digest: format(layerDigest), size: layer.length }],
        annotations: { 'org.opencontainers.image.version': `v${m}` },
      }),
    );
    const digest = digestOf(body);
    refs.push(`ref:${format(digest)}`);
    files.push(
      [keyFor({ kind: 'blob', digest }), body],
      [keyFor({ kind: 'blobIndex', digest }), JSON.stringify({ [namespace]: ['manifest'] })],
      [
        keyFor({ kind: 'revisionLink', namespace, digest }),
        link(digest, { mediaType: MANIFEST, size: body.length }),
      ],
      [keyFor({ kind: 'tagLink', namespace, tag: `v${m}` }), link(digest)],
    );
  }
  for (const [digest, bytes] of [
    [configDigest, config],
    [layerDigest, layer],
  ] as const) {
    files.push(
      [keyFor({ kind: 'blob', digest }), bytes],
      [keyFor({ kind: 'blobIndex', digest }), JSON.stringify({ [namespace]: ['layer', ...refs] })],
      [keyFor({ kind: 'layerLink', namespace, digest }), link(digest)],
    );
  }
  return files;
}

/** Writes the store under `root`; calls `onProgress` with the namespaces written so far. */
export async function writeScrubStore(
  root: string,
  shape: StoreShape,
  onProgress: (namespaces: number) => void = () => {},
): Promise<void> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (let index = next++; index < shape.namespaces; index = next++) {
      for (const [path, data] of namespaceFiles(index, shape.manifestsPerNamespace)) {
        const file = join(root, path);
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, data);
      }
      done++;
      if (done % 500 === 0) onProgress(done);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}
