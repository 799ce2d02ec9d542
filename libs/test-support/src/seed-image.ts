import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Distribution } from './distribution.js';
import { OciClient } from './oci-client.js';
import { type MkOciOptions, mkOci, OciLayout } from './oci-layout.js';
import { pushLayout } from './push-layout.js';

export interface SeededImage {
  readonly layout: OciLayout;
  /** The tagged manifest (or index). */
  readonly digest: string;
  /** Image manifests by platform (`linux/amd64`), with their config and layer digests. */
  readonly images: ReadonlyMap<string, { digest: string; blobs: string[] }>;
  /** The config and layer digests of all its image manifests. */
  readonly blobs: readonly string[];
  /** Removes the layout (the image stays in the distribution). */
  remove(): Promise<void>;
}

interface Document {
  manifests?: { digest: string; platform?: { os: string; architecture: string } }[];
  config?: { digest: string };
  layers?: { digest: string }[];
}

/**
 * Pushes a deterministic image (mkOci, seeded by repository and tag) to `repository` of a
 * distribution under `tag`, from a layout in a temp dir that stays until `remove()`.
 */
export async function seedImage(
  upstream: Distribution,
  repository: string,
  tag: string,
  platforms: readonly string[] = ['linux/amd64'],
  options: MkOciOptions = {},
): Promise<SeededImage> {
  const dir = await mkdtemp(join(tmpdir(), 'angos-seed-layout-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const digest = await mkOci(dir, tag, platforms, { seed: `${repository}-${tag}`, ...options });
    const layout = new OciLayout(dir);
    await pushLayout(
      new OciClient(upstream.url, upstream.pushHeaders(repository)),
      layout,
      repository,
      digest,
      tag,
    );
    const images = new Map<string, { digest: string; blobs: string[] }>();
    const top = await layout.json<Document>(digest);
    // One platform makes a single image manifest (no index naming its platform).
    const entries = top.manifests ?? [{ digest, platform: undefined }];
    for (const entry of entries) {
      const image = await layout.json<Document>(entry.digest);
      const platform = entry.platform ? `${entry.platform.os}/${entry.platform.architecture}` : platforms[0]!;
      images.set(platform, {
        digest: entry.digest,
        blobs: [image.config!.digest, ...(image.layers ?? []).map((layer) => layer.digest)],
      });
    }
    const blobs = [...images.values()].flatMap((image) => image.blobs);
    return { layout, digest, images, blobs, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}
