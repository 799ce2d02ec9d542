import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  angosLauncher,
  containersEnv,
  freePort,
  mkOci,
  OciLayout,
  type RedisServer,
  repoRoot,
  runOk,
  startRedisServer,
  startWebhookReceiver,
  terminate,
  track,
  type WebhookReceiver,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { clientPath } from './clients.js';
import { skipWithoutClients } from './fixture.js';

/**
 * The Helm chart, checked with the real tools: helm (pinned in scripts/go-clients.txt) lints and
 * renders every example values file in helm/angos/ci/; every rendered object is validated against
 * the Kubernetes schemas (kubernetes-models: a current release's OpenAPI; the API versions the
 * chart uses are served unchanged since 1.27, see docs/kubernetes.md) and the KEDA,
 * prometheus-operator and Gateway API CRD schemas (@kubernetes-models packages); and the split
 * deployment the chart renders is run as local processes — each Deployment's args and env with
 * its config.toml, service addresses mapped to loopback — on the suite's RGW and a redis-server.
 */

type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  stringData?: Record<string, string>;
};

interface Container {
  name: string;
  image: string;
  args: string[];
  env?: { name: string; value?: string }[];
  securityContext: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}

interface PodSpec {
  containers: Container[];
  securityContext: Record<string, unknown>;
}

const chartDir = join(repoRoot(), 'helm', 'angos');
const ciDir = join(chartDir, 'ci');
const ciValues = readdirSync(ciDir).filter((f) => f.endsWith('.yaml'));
const RELEASE = ['angos', '--namespace', 'registry', '--kube-version', '1.30.0'];

const helm = (...args: string[]) =>
  runOk('helm', args, { env: { ...process.env, PATH: clientPath() }, timeoutMs: 30_000 });

async function template(...valuesFiles: string[]): Promise<K8sObject[]> {
  const out = await helm('template', ...RELEASE, chartDir, ...valuesFiles.flatMap((f) => ['-f', f]));
  return parseAllDocuments(out.stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** The model module of an apiVersion: its exported classes validate an object against the schema. */
const MODELS: Record<string, string> = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
  'batch/v1': 'kubernetes-models/batch/v1',
  'policy/v1': 'kubernetes-models/policy/v1',
  'networking.k8s.io/v1': 'kubernetes-models/networking.k8s.io/v1',
  'keda.sh/v1alpha1': '@kubernetes-models/keda/keda.sh/v1alpha1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
  'gateway.networking.k8s.io/v1': '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1',
};

async function validate(object: K8sObject): Promise<void> {
  const module = MODELS[object.apiVersion];
  if (!module) throw new Error(`${object.kind} ${object.metadata.name}: no schema for ${object.apiVersion}`);
  const models = (await import(module)) as Record<string, new (o: unknown) => { validate(): void }>;
  const Model = models[object.kind];
  if (!Model)
    throw new Error(
      `${object.kind} ${object.metadata.name}: no schema for ${object.apiVersion} ${object.kind}`,
    );
  try {
    new Model(object).validate();
  } catch (error) {
    throw new Error(`${object.kind} ${object.metadata.name}: ${(error as Error).message}`);
  }
}

function podSpecOf(object: K8sObject): PodSpec | undefined {
  // biome-ignore lint/suspicious/noExplicitAny: rendered YAML, its shape checked by validate()
  const spec = object.spec as any;
  if (object.kind === 'Deployment') return spec?.template.spec;
  if (object.kind === 'CronJob') return spec?.jobTemplate.spec.template.spec;
  return undefined;
}

const byKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);

describe.skipIf(skipWithoutClients('helm'))('the Helm chart', () => {
  it('passes helm lint --strict with every example values file', async () => {
    expect(ciValues.length).toBeGreaterThanOrEqual(4);
    for (const values of ciValues) await helm('lint', '--strict', chartDir, '-f', join(ciDir, values));
  });

  it('renders objects valid against the Kubernetes and CRD schemas, hardened, with one image tag', async () => {
    for (const values of ciValues) {
      const objects = await template(join(ciDir, values));
      expect(objects.length, values).toBeGreaterThan(3);
      for (const object of objects) await validate(object);
      const pods = objects.map(podSpecOf).filter((p): p is PodSpec => p !== undefined);
      const images = new Set(pods.flatMap((p) => p.containers.map((c) => c.image)));
      expect(images.size, `${values}: one image for every workload`).toBe(1);
      for (const pod of pods) {
        expect(pod.securityContext).toMatchObject({
          runAsNonRoot: true,
          seccompProfile: { type: 'RuntimeDefault' },
        });
        for (const c of pod.containers) {
          expect(c.securityContext).toMatchObject({
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
          });
          // Mounted as a directory: a subPath mount never sees the kubelet's updates (no hot reload).
          expect(c.volumeMounts?.find((m) => m.mountPath === '/etc/angos')).toEqual({
            name: 'config',
            mountPath: '/etc/angos',
            readOnly: true,
          });
          expect(c.args.slice(0, 2)).toEqual(['-c', '/etc/angos/config.toml']);
        }
      }
    }
  });

  it('scales the workers with KEDA on angos_job_queue_pending, with the lead time of the config', async () => {
    const objects = await template(join(ciDir, 'split-s3-redis-values.yaml'));
    const [scaled] = byKind(objects, 'ScaledObject');
    // biome-ignore lint/suspicious/noExplicitAny: rendered YAML, its shape checked by validate()
    const spec = scaled?.spec as any;
    expect(spec['minReplicaCount']).toBe(0);
    expect(spec['cooldownPeriod']).toBeGreaterThan(0);
    expect(spec['triggers'][0].type).toBe('prometheus');
    expect(spec['triggers'][0].metadata.query).toContain('angos_job_queue_pending');
    const config = byKind(objects, 'Secret')[0]?.stringData?.['config.toml'] ?? '';
    const horizon = /pending_ready_horizon_secs = (\d+)/.exec(config)?.[1];
    expect(scaled?.metadata.annotations?.['angos.io/lead-time-seconds']).toBe(horizon);
    const [cron] = byKind(objects, 'CronJob');
    expect(cron?.spec?.['concurrencyPolicy']).toBe('Forbid');
    // The PrometheusRule carries deploy/prometheus/angos-alerts.yaml's rules, not a copy.
    const alerts = parse(readFileSync(join(repoRoot(), 'deploy', 'prometheus', 'angos-alerts.yaml'), 'utf8'));
    expect(byKind(objects, 'PrometheusRule')[0]?.spec?.['groups']).toEqual(alerts.groups);
  });

  it('passes workers as --workers, and leaves it to the service where it is null', async () => {
    const argsOf = async (...sets: string[]) => {
      const out = await helm(
        'template',
        ...RELEASE,
        chartDir,
        '-f',
        join(ciDir, 'split-s3-redis-values.yaml'),
        ...sets.flatMap((set) => ['--set', set]),
      );
      const objects = parseAllDocuments(out.stdout).map((doc) => doc.toJS() as K8sObject | null);
      const byComponent = new Map<string, string[]>();
      for (const object of objects) {
        const pod = object && object.kind === 'Deployment' ? podSpecOf(object) : undefined;
        const args = pod?.containers[0]?.args ?? [];
        if (args[2] !== undefined) byComponent.set(args[2], args.slice(3));
      }
      return byComponent;
    };
    // Split mode: one thread per pod, as the HPA scales pods.
    const split = await argsOf();
    for (const component of ['gateway', 'registry-api', 'pull-through-cache'])
      expect(split.get(component)?.slice(-2), component).toEqual(['--workers', '1']);
    const unset = await argsOf('gateway.workers=null', 'registryApi.workers=4');
    expect(unset.get('gateway')).not.toContain('--workers');
    expect(unset.get('registry-api')?.slice(-2)).toEqual(['--workers', '4']);
    // Single mode: the default, one thread per CPU of the container, unless set.
    const single = await argsOf('mode=single');
    expect(single.get('server')).toEqual([]);
    expect((await argsOf('mode=single', 'server.workers=3')).get('server')).toEqual(['--workers', '3']);
  });

  it('rejects unknown and mistyped values (values.schema.json)', async () => {
    for (const set of [
      'gateway.replcas=3',
      'mode=cluster',
      'worker.keda.minReplicaCount=-1',
      'locks.strategy=etcd',
      'server.workers=0',
      'gateway.workers=two',
    ]) {
      await expect(helm('template', ...RELEASE, chartDir, '--set', set), set).rejects.toThrow(
        /values don't meet the specifications|schema/,
      );
    }
  });

  it('deploy/kubernetes/split.yaml is what the chart renders for ci/split-s3-redis-values.yaml', async () => {
    const out = await helm('template', ...RELEASE, chartDir, '-f', join(ciDir, 'split-s3-redis-values.yaml'));
    const example = readFileSync(join(repoRoot(), 'deploy', 'kubernetes', 'split.yaml'), 'utf8');
    // The file starts with a comment saying how it was made; the rest is helm's output as is.
    expect(example.slice(example.indexOf('---'))).toBe(out.stdout.slice(out.stdout.indexOf('---')));
  });
});

const s3 = inject('s3');

describe.skipIf(skipWithoutClients('helm', 'skopeo', 'redis-server') || s3 === null).each([
  // Redis locks; the worker drains every queue, the events queue among them.
  { values: 'split-s3-redis-values.yaml', workerDrainsEvents: true },
  // S3 locks on the RGW; the worker drains only the replication queue.
  { values: 'split-s3-locks-values.yaml', workerDrainsEvents: false },
])(
  'the split deployment rendered from ci/$values, run as local processes',
  ({ values, workerDrainsEvents }) => {
    let work = '';
    let redis: RedisServer | undefined;
    let receiver: WebhookReceiver | undefined;
    const processes: { name: string; child: ChildProcess; output: string[] }[] = [];
    const ports = new Map<string, number>();
    let renderedConfig = '';
    const configPath = () => join(work, 'etc', 'config.toml');
    const logs = () => processes.map((p) => `--- ${p.name}\n${p.output.join('').slice(-6000)}`).join('\n');

    beforeAll(async () => {
      if (!s3) return;
      work = await mkdtemp(join(tmpdir(), 'angos-helm-'));
      [redis, receiver] = await Promise.all([startRedisServer(), startWebhookReceiver()]);
      const prefix = `helm-${randomUUID().slice(0, 8)}`;
      // What an operator's own values file adds to the example: the endpoints of this machine.
      const overrides = {
        s3: {
          endpoint: s3.endpoint,
          bucket: s3.bucket,
          region: s3.region,
          accessKeyId: s3.accessKeyId,
          secretKey: s3.secretAccessKey,
          blobKeyPrefix: `${prefix}/blobs`,
          metadataKeyPrefix: `${prefix}/metadata`,
        },
        locks: values.includes('redis') ? { redis: { url: redis.url } } : {},
        config: {
          accessPolicy: { default: 'allow' },
          extraToml: [
            '[global]',
            'event_webhooks = ["audit"]',
            '[event_webhook.audit]',
            `url = "${receiver.url}"`,
            'policy = "async"',
            'events = ["manifest.push"]',
          ].join('\n'),
        },
      };
      const overridesFile = join(work, 'local-values.yaml');
      await writeFile(overridesFile, JSON.stringify(overrides));
      const objects = await template(join(ciDir, values), overridesFile);

      // The cluster's names and ports, mapped to loopback: <service>:<port> → 127.0.0.1:<free>.
      const deployments = byKind(objects, 'Deployment');
      for (const d of deployments)
        ports.set(d.metadata.labels?.['app.kubernetes.io/component'] ?? '', await freePort());
      let config = byKind(objects, 'Secret')[0]?.stringData?.['config.toml'] ?? '';
      for (const [component, port] of ports) {
        config = config.replace(
          new RegExp(`http://angos-${component}:\\d+`, 'g'),
          `http://127.0.0.1:${port}`,
        );
      }
      renderedConfig = config;
      await mkdir(join(work, 'etc'));
      await writeSecretVolume(join(work, 'etc'), config, 1);
      await symlink('..data/config.toml', configPath());

      // registry-api and pull-through-cache before the gateway, as the rollout would settle.
      const order = ['registry-api', 'pull-through-cache', 'worker', 'gateway'];
      deployments.sort(
        (a, b) =>
          order.indexOf(a.metadata.labels?.['app.kubernetes.io/component'] ?? '') -
          order.indexOf(b.metadata.labels?.['app.kubernetes.io/component'] ?? ''),
      );
      for (const d of deployments) {
        const component = d.metadata.labels?.['app.kubernetes.io/component'] ?? '';
        const container = podSpecOf(d)?.containers[0];
        if (!container) throw new Error(`${d.metadata.name}: no container`);
        const port = ports.get(component) ?? 0;
        const args = container.args.map((arg) =>
          arg === '/etc/angos/config.toml'
            ? configPath()
            : arg.replace(/^0\.0\.0\.0:\d+$/, `127.0.0.1:${port}`),
        );
        expect(args, `${component} listens where its Service points`).toContain(`127.0.0.1:${port}`);
        const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? '']));
        const child = spawn(angosLauncher(), args, {
          cwd: work,
          env: { PATH: process.env['PATH'], HOME: work, ...env },
        });
        track(child);
        const output: string[] = [];
        child.stdout?.on('data', (b: Buffer) => output.push(b.toString()));
        child.stderr?.on('data', (b: Buffer) => output.push(b.toString()));
        processes.push({ name: component, child, output });
        await waitReady(`http://127.0.0.1:${port}/readyz`, child, logs);
      }
    }, 90_000);

    afterAll(async () => {
      for (const p of [...processes].reverse()) await terminate(p.child);
      await redis?.stop();
      await receiver?.close();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('takes a push and a pull through the gateway, and the worker delivers the queued event (when it drains events)', async () => {
      try {
        const host = `127.0.0.1:${ports.get('gateway')}`;
        const env = {
          ...(await containersEnv(join(work, 'containers'), { insecureRegistries: [host] })),
          PATH: clientPath(),
        };
        const src = new OciLayout(join(work, 'src'));
        const digest = await mkOci(src.dir, 'v1', ['linux/amd64'], { seed: randomUUID(), fillMb: 1 });
        await runOk(
          'skopeo',
          ['copy', '--dest-tls-verify=false', `oci:${src.dir}:v1`, `docker://${host}/team/app:v1`],
          { env, timeoutMs: 45_000 },
        );
        const out = new OciLayout(join(work, 'out'));
        await runOk(
          'skopeo',
          ['copy', '--src-tls-verify=false', `docker://${host}/team/app:v1`, `oci:${out.dir}:v1`],
          { env, timeoutMs: 45_000 },
        );
        expect((await out.descriptor('v1')).digest).toBe(digest);
        // registry-api only queues async deliveries under [global.job_queue]: the worker sends them.
        if (workerDrainsEvents) {
          await receiver?.waitFor((ds) => ds.some((d) => d.event['kind'] === 'manifest.push'), 30_000);
        }
      } catch (error) {
        console.error(logs());
        throw error;
      }
    });

    it('reloads config.toml when the kubelet swaps the Secret volume', async () => {
      const gateway = `http://127.0.0.1:${ports.get('gateway')}/v2/`;
      expect((await fetch(gateway)).status).toBe(200);
      await writeSecretVolume(
        join(work, 'etc'),
        renderedConfig.replace('default = "allow"', 'default = "deny"'),
        2,
      );
      const deadline = Date.now() + 20_000;
      let status = 200;
      while (status === 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        status = (await fetch(gateway)).status;
      }
      expect(status, logs()).toBe(401);
    });
  },
);

/**
 * Writes `config.toml` the way the kubelet updates a Secret or ConfigMap volume: the files in a
 * new timestamped directory, then the `..data` symlink re-pointed at it in one rename. The
 * directory's `config.toml` is a symlink to `..data/config.toml`.
 */
async function writeSecretVolume(dir: string, config: string, version: number): Promise<void> {
  const versioned = `..2026_01_01_00_00_0${version}.000000000`;
  await mkdir(join(dir, versioned));
  await writeFile(join(dir, versioned, 'config.toml'), config);
  await symlink(versioned, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
}

async function waitReady(url: string, child: ChildProcess, logs: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited\n${logs()}`);
    const status = await fetch(url).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url}: not ready after 30 s\n${logs()}`);
}
