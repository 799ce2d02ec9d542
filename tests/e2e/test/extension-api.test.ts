import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mkOci, OciLayout } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { DEPLOYMENTS, skipWithoutClients, useRegistry } from './fixture.js';
import { ADMIN_HASH, ALICE_HASH } from './identities.js';

const SBOM_TYPE = 'application/spdx+json';
const SIGNATURE_TYPE = 'application/vnd.dev.cosign.artifact.sig.v1+json';

/**
 * The extension API (docs/extension-api.md) through `angos server` and the split gateway + registry-api: oras pushes a
 * multi-platform index and attaches a signature and an SBOM to it (as cosign's OCI 1.1 mode and
 * `oras attach` do), then the API is read as a browser would, with Basic credentials. alice's
 * policy refuses the `private` namespaces: she never sees them in a listing and is refused their tags.
 */
const CONFIG = `
[auth.identity.admin]
username = "admin"
password = "${ADMIN_HASH}"

[auth.identity.alice]
username = "alice"
password = "${ALICE_HASH}"

[global.access_policy]
default = "deny"
rules = [
  "has(identity.username) && identity.username == 'admin'",
  "has(identity.username) && identity.username == 'alice' && (!has(request.namespace) || !request.namespace.startsWith('private'))",
]
`;

// Both process layouts on fs: the per-namespace filtering runs in one process (angos server) and
// across the hop (split).
const ON_FS = DEPLOYMENTS.filter((deployment) => deployment.storage === 'fs');

describe.skipIf(skipWithoutClients('oras')).each(ON_FS)(
  'extension API through angos $label',
  (deployment) => {
    const r = useRegistry(deployment, ['oras'], { config: () => CONFIG });
    const login = ['--plain-http', '--username', 'admin', '--password', 'admin-secret'];

    const get = (path: string, user?: 'admin' | 'alice') =>
      fetch(`${r.angos.url}${path}`, {
        headers: user === undefined ? {} : { authorization: `Basic ${btoa(`${user}:${user}-secret`)}` },
      });

    async function attach(
      repo: string,
      artifactType: string,
      name: string,
      content: string,
    ): Promise<string> {
      const dir = r.path('files');
      await mkdir(dir);
      await writeFile(join(dir, name), content);
      const attached = await r.okIn(
        dir,
        'oras',
        'attach',
        ...login,
        '--distribution-spec',
        'v1.1-referrers-api',
        '--artifact-type',
        artifactType,
        '--format',
        'json',
        r.image(repo, 'v1'),
        name,
      );
      return JSON.parse(attached.stdout).digest as string;
    }

    async function pushIndex(repo: string): Promise<string> {
      const src = new OciLayout(r.path('src'));
      const index = await mkOci(src.dir, 'v1', ['linux/amd64', 'linux/arm64'], { seed: r.seed() });
      await r.ok(
        'oras',
        'cp',
        '--from-oci-layout',
        '--to-plain-http',
        '--to-username',
        'admin',
        '--to-password',
        'admin-secret',
        `${src.dir}:v1`,
        r.image(repo, 'v1'),
      );
      return index;
    }

    it('shows an index with its platforms and referrers, and hides what the policy refuses', async () => {
      const index = await pushIndex('team/app');
      await pushIndex('private/app');
      const signature = await attach('team/app', SIGNATURE_TYPE, 'sig.json', '{"critical":{}}');
      const sbom = await attach('team/app', SBOM_TYPE, 'sbom.spdx.json', '{"spdxVersion":"SPDX-2.3"}');

      const tags = await get('/v2/_ext/team/app/_tags', 'alice');
      expect(tags.status).toBe(200);
      const listed = (await tags.json()) as { total: number; tags: Array<Record<string, unknown>> };
      expect(listed.total).toBe(1);
      expect(listed.tags[0]).toMatchObject({
        name: 'v1',
        digest: index,
        media_type: 'application/vnd.oci.image.index.v1+json',
        platforms: [
          { os: 'linux', architecture: 'amd64', variant: null },
          { os: 'linux', architecture: 'arm64', variant: null },
        ],
      });
      expect(listed.tags[0]!['size']).toBeGreaterThan(0);

      const detail = (await (await get(`/v2/_ext/team/app/_manifests/${index}`, 'alice')).json()) as {
        manifests: unknown[];
        referrers: Array<{ digest: string; artifact_type: string }>;
      };
      expect(detail.manifests).toHaveLength(2);
      expect(detail.referrers.map((referrer) => [referrer.digest, referrer.artifact_type]).sort()).toEqual(
        [
          [signature, SIGNATURE_TYPE],
          [sbom, SBOM_TYPE],
        ].sort(),
      );

      const revisions = (await (await get('/v2/_ext/team/app/_revisions', 'alice')).json()) as {
        revisions: Array<{ digest: string; parents: string[]; subject: string | null }>;
      };
      // The index, its two images, the signature and the SBOM.
      expect(revisions.revisions).toHaveLength(5);
      expect(revisions.revisions.filter((revision) => revision.parents.includes(index))).toHaveLength(2);
      expect(revisions.revisions.filter((revision) => revision.subject === index)).toHaveLength(2);

      // What alice may not read she does not see, and is refused.
      const paths = async (path: string, user: 'admin' | 'alice') =>
        ((await (await get(path, user)).json()) as { entries: Array<{ path: string }> }).entries.map(
          (e) => e.path,
        );
      expect(await paths('/v2/_ext/_namespaces', 'admin')).toEqual(['private', 'team']);
      expect(await paths('/v2/_ext/_namespaces', 'alice')).toEqual(['team']);
      expect(await paths('/v2/_ext/_namespaces?q=app', 'alice')).toEqual(['team/app']);
      expect(await paths('/v2/_ext/_namespaces?q=app', 'admin')).toEqual(['private/app', 'team/app']);
      const refused = await get('/v2/_ext/private/app/_tags', 'alice');
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('DENIED');
      const anonymous = await get('/v2/_ext/_namespaces');
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toBe('Basic realm="Angos"');

      const unknown = await get('/v2/_ext/team/nothing/_tags', 'admin');
      expect(unknown.status).toBe(404);
      expect(((await unknown.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe(
        'NAME_UNKNOWN',
      );
      const config = (await (await get('/v2/_ext/_ui/config', 'alice')).json()) as Record<string, unknown>;
      expect(config).toMatchObject({ name: 'Angos', username: 'alice' });
    }, 120_000);
  },
);
