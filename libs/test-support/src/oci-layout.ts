import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sharedToolsDir } from './repo-root.js';
import { runOk } from './run.js';

export interface MkOciOptions {
  /** Changes the generated content, hence every digest (mk-oci.sh SEED). */
  seed?: string;
  /** Adds an incompressible file of this many MiB to each layer (mk-oci.sh FILL_MB). */
  fillMb?: number;
  /** Layer compression; 'none' writes a plain tar layer (mk-oci.sh LAYER_COMPRESS). */
  compress?: 'gzip' | 'none';
}

/**
 * Writes (or adds a tag to) a deterministic OCI image layout at `dir` with the shared mk-oci.sh:
 * one image manifest for one platform, an image index for several. Returns the tagged digest.
 */
export async function mkOci(
  dir: string,
  tag: string,
  platforms: readonly string[] = ['linux/amd64'],
  options: MkOciOptions = {},
): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.seed !== undefined) env['SEED'] = options.seed;
  if (options.fillMb !== undefined) env['FILL_MB'] = String(options.fillMb);
  if (options.compress !== undefined) env['LAYER_COMPRESS'] = options.compress;
  const script = join(sharedToolsDir(), 'mk-oci.sh');
  const { stdout } = await runOk('bash', [script, dir, tag, platforms.join(',')], {
    env,
    timeoutMs: 120_000,
  });
  const digest = stdout.trim();
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`mk-oci.sh printed no digest: ${stdout}`);
  return digest;
}

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

/** Read access to an OCI image layout directory (as written by mk-oci.sh or `skopeo copy … oci:`). */
export class OciLayout {
  constructor(readonly dir: string) {}

  async index(): Promise<{ manifests: OciDescriptor[] }> {
    return JSON.parse(await readFile(join(this.dir, 'index.json'), 'utf8'));
  }

  /** The descriptor `index.json` holds for `tag`. */
  async descriptor(tag: string): Promise<OciDescriptor> {
    const index = await this.index();
    const found = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
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
