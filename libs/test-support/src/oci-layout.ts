import { createCipheriv, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { MediaType } from '@angos/oci';
import { type TarEntry, tar } from './tar.js';

export interface MkOciOptions {
  /** Changes the generated content, hence every digest. */
  seed?: string;
  /** Adds an incompressible file of this many MiB to each layer. */
  fillMb?: number;
  /** Layer compression; 'none' writes a plain tar layer (no CPU cost, blob about fillMb MiB). */
  compress?: 'gzip' | 'none';
  /** 'oci' (default) or 'docker': the Docker v2 manifest, manifest list, config and layer types. */
  mediaTypes?: 'oci' | 'docker';
}

const MIB = 1024 * 1024;

const TYPES = {
  oci: {
    manifest: MediaType.OciManifest,
    index: MediaType.OciIndex,
    config: MediaType.OciConfig,
    layer: { gzip: MediaType.OciLayerTarGzip, none: MediaType.OciLayerTar },
  },
  docker: {
    manifest: MediaType.DockerManifest,
    index: MediaType.DockerManifestList,
    config: MediaType.DockerConfig,
    layer: { gzip: MediaType.DockerLayerTarGzip, none: 'application/vnd.docker.image.rootfs.diff.tar' },
  },
} as const;

interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** `os/arch[/variant]`, e.g. linux/arm64/v8. */
function parsePlatform(text: string): Platform {
  const [os, architecture, variant, ...rest] = text.split('/');
  if (!os || !architecture || rest.length > 0) throw new Error(`not a platform (os/arch[/variant]): ${text}`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** `bytes` of deterministic, incompressible content: AES-128-CTR over zeros, keyed by `seed`. */
function pseudoRandom(seed: string, bytes: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(bytes)), cipher.final()]);
}

const digestOf = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** Canonical enough JSON: the key order is the code's, so the bytes are stable. */
const jsonBytes = (value: unknown) => Buffer.from(JSON.stringify(value));

/**
 * Writes (or adds a tag to) a deterministic OCI image layout at `dir`, in-process: one image
 * manifest for one platform, an image index (or Docker manifest list) for several. Each image has
 * one layer holding /hello.txt (and /random.bin with `fillMb`). The same arguments always give
 * the same bytes, hence the same digests. Returns the tagged digest.
 */
export async function mkOci(
  dir: string,
  tag: string,
  platforms: readonly string[] = ['linux/amd64'],
  options: MkOciOptions = {},
): Promise<string> {
  if (platforms.length === 0) throw new Error('mkOci needs at least one platform');
  const types = TYPES[options.mediaTypes ?? 'oci'];
  const compress = options.compress ?? 'gzip';
  const seed = options.seed ?? 'seed';
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}\n');
  const put = async (mediaType: string, data: Buffer) => {
    const digest = digestOf(data);
    const path = join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
    if (!existsSync(path)) {
      await writeFile(`${path}.tmp`, data);
      await rename(`${path}.tmp`, path);
    }
    return { mediaType, digest, size: data.length };
  };

  const images = [];
  for (const text of platforms) {
    const platform = parsePlatform(text);
    const files: TarEntry[] = [{ name: 'hello.txt', data: Buffer.from(`hello from ${text}\n`) }];
    if (options.fillMb) {
      files.push({ name: 'random.bin', data: pseudoRandom(`${seed}-${tag}-${text}`, options.fillMb * MIB) });
    }
    const layerTar = tar(files);
    const layer = await put(types.layer[compress], compress === 'gzip' ? gzipSync(layerTar) : layerTar);
    const config = await put(
      types.config,
      jsonBytes({
        ...platform,
        config: { Cmd: ['/hello.txt'] },
        rootfs: { type: 'layers', diff_ids: [digestOf(layerTar)] },
        created: '1970-01-01T00:00:00Z',
      }),
    );
    const manifest = await put(
      types.manifest,
      jsonBytes({ schemaVersion: 2, mediaType: types.manifest, config, layers: [layer] }),
    );
    images.push({ ...manifest, platform });
  }
  const top =
    images.length === 1
      ? { mediaType: images[0]!.mediaType, digest: images[0]!.digest, size: images[0]!.size }
      : await put(types.index, jsonBytes({ schemaVersion: 2, mediaType: types.index, manifests: images }));

  // Add the tag to index.json, replacing an earlier one of the same name.
  const indexPath = join(dir, 'index.json');
  const index: { schemaVersion: number; manifests: OciDescriptor[] } = existsSync(indexPath)
    ? JSON.parse(await readFile(indexPath, 'utf8'))
    : { schemaVersion: 2, manifests: [] };
  index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME] !== tag);
  index.manifests.push({ ...top, annotations: { [REF_NAME]: tag } });
  await writeFile(`${indexPath}.tmp`, JSON.stringify(index));
  await rename(`${indexPath}.tmp`, indexPath);
  return top.digest;
}

const REF_NAME = 'org.opencontainers.image.ref.name';

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

/** Read access to an OCI image layout directory (as `mkOci` or `skopeo copy … oci:` write it). */
export class OciLayout {
  constructor(readonly dir: string) {}

  async index(): Promise<{ manifests: OciDescriptor[] }> {
    return JSON.parse(await readFile(join(this.dir, 'index.json'), 'utf8'));
  }

  /** The descriptor `index.json` holds for `tag`. */
  async descriptor(tag: string): Promise<OciDescriptor> {
    const index = await this.index();
    const found = index.manifests.find((d) => d.annotations?.[REF_NAME] === tag);
    if (!found) throw new Error(`tag ${tag} not in ${this.dir}/index.json`);
    return found;
  }

  blob(digest: string): Promise<Buffer> {
    const [algorithm, hex] = digest.split(':');
    return readFile(join(this.dir, 'blobs', algorithm!, hex!));
  }

  async json<T = Record<string, unknown>>(digest: string): Promise<T> {
    return JSON.parse((await this.blob(digest)).toString('utf8'));
  }

  /**
   * Every digest reachable from `digest` (index → manifests → config and layers), the root
   * included, sorted: two layouts that hold the same image give the same list.
   */
  async closure(digest: string): Promise<string[]> {
    const seen = new Set<string>();
    const visit = async (d: string, isManifest: boolean): Promise<void> => {
      if (seen.has(d)) return;
      seen.add(d);
      if (!isManifest) return;
      const doc = await this.json<{
        manifests?: OciDescriptor[];
        config?: OciDescriptor;
        layers?: OciDescriptor[];
      }>(d);
      for (const child of doc.manifests ?? []) await visit(child.digest, true);
      if (doc.config) await visit(doc.config.digest, false);
      for (const layer of doc.layers ?? []) await visit(layer.digest, false);
    };
    await visit(digest, true);
    return [...seen].sort();
  }
}
