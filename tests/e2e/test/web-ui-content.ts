import { join } from 'node:path';
import { JobQueue, JobRunner, TerminalJobError } from '@angos/jobs';
import { MemoryLockManager } from '@angos/lock';
import { openMetadataStore } from '@angos/storage';
import { mkOci, type OciClient, OciLayout, pushLayout, sha256 } from '@angos/test-support';

/**
 * What the web UI suite browses, written the way clients write it: a multi-platform index with a
 * cosign-style signature and an SPDX SBOM attached through the referrers API, a plain image, a
 * namespace one user may not read, an upload left open, and a dead-lettered job.
 */

const EMPTY_CONFIG = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 };
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const SIGNATURE_TYPE = 'application/vnd.dev.cosign.artifact.sig.v1+json';
export const SBOM_TYPE = 'application/spdx+json';

/** An artifact manifest (OCI 1.1) of `artifactType` with one layer, referring to `subject`. */
async function pushReferrer(
  client: OciClient,
  repo: string,
  subject: { mediaType: string; digest: string; size: number },
  artifactType: string,
  layer: { mediaType: string; data: string; annotations?: Record<string, string> },
): Promise<string> {
  await client.pushBlob(repo, Buffer.from('{}'));
  const data = Buffer.from(layer.data);
  const layerDigest = await client.pushBlob(repo, data);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: EMPTY_CONFIG,
    layers: [
      {
        mediaType: layer.mediaType,
        digest: layerDigest,
        size: data.length,
        ...(layer.annotations ? { annotations: layer.annotations } : {}),
      },
    ],
    subject,
    annotations: { 'org.opencontainers.image.created': '2026-01-02T03:04:05Z' },
  });
  const digest = sha256(manifest);
  const pushed = await client.pushManifest(repo, digest, manifest, OCI_MANIFEST);
  if (pushed.status !== 201) throw new Error(`referrer push answered ${pushed.status}`);
  return digest;
}

export interface Seeded {
  /** The multi-platform index tagged v1 and v2 in team/app. */
  readonly index: string;
  readonly signature: string;
  readonly sbom: string;
  /** The upload session left open in team/app. */
  readonly uploadId: string;
}

export async function pushContent(client: OciClient, work: string, seed: string): Promise<Seeded> {
  const layout = new OciLayout(join(work, 'index-layout'));
  const index = await mkOci(layout.dir, 'v1', ['linux/amd64', 'linux/arm64'], { seed });
  await pushLayout(client, layout, 'team/app', index, 'v1');
  await pushLayout(client, layout, 'team/app', index, 'v2');
  const subject = {
    mediaType: 'application/vnd.oci.image.index.v1+json',
    digest: index,
    size: (await layout.blob(index)).length,
  };
  const signature = await pushReferrer(client, 'team/app', subject, SIGNATURE_TYPE, {
    mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
    data: JSON.stringify({ critical: { image: { 'docker-manifest-digest': index } } }),
    annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQDexampleSignature==' },
  });
  const sbom = await pushReferrer(client, 'team/app', subject, SBOM_TYPE, {
    mediaType: SBOM_TYPE,
    data: JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'team/app' }),
  });

  const tools = new OciLayout(join(work, 'tools-layout'));
  await pushLayout(
    client,
    tools,
    'team/tools',
    await mkOci(tools.dir, 'latest', ['linux/amd64'], { seed }),
    'latest',
  );
  const secret = new OciLayout(join(work, 'secret-layout'));
  await pushLayout(
    client,
    secret,
    'secret/vault',
    await mkOci(secret.dir, 'v1', ['linux/amd64'], { seed }),
    'v1',
  );

  const started = await client.request('POST', '/v2/team/app/blobs/uploads/');
  if (started.status !== 202) throw new Error(`upload start answered ${started.status}`);
  const location = started.headers.get('location') ?? '';
  const uploadId = location.split('?')[0]?.split('/').pop() ?? '';
  await client.request('PATCH', location, {
    headers: { 'content-type': 'application/octet-stream' },
    body: Buffer.alloc(4096, 1),
  });
  return { index, signature, sbom, uploadId };
}

/**
 * A dead-lettered replication job, written into the metadata store under `rootDir` before the
 * registry starts: a worker ran it and it failed for good (a downstream refusing it).
 */
export async function seedFailedJob(rootDir: string): Promise<string> {
  const store = await openMetadataStore({ kind: 'fs', rootDir, syncToDisk: false });
  const jobs = new JobQueue({ store });
  const { id } = await jobs.enqueue('replication', 'replicate', 'tag:team/app:v1', {
    repository: 'team',
    tag: 'v1',
  });
  const runner = new JobRunner({
    queue: jobs,
    locks: new MemoryLockManager(),
    pools: [{ name: 'replication', concurrency: 1 }],
    handlers: [
      {
        kind: 'replicate',
        async run() {
          throw new TerminalJobError('the downstream answered 403');
        },
      },
    ],
    pollIntervalMs: 20,
  });
  runner.start();
  try {
    const deadline = Date.now() + 20_000;
    while ((await jobs.failedCount('replication')) === 0) {
      if (Date.now() > deadline) throw new Error('the seeded job was not dead-lettered');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await runner.stop(0);
    await store.close?.();
  }
  return id;
}
