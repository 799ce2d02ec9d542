import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { terminate, track } from './children.js';
import { requirePrograms } from './optional.js';
import { freePort } from './ports.js';
import { startTokenIssuer, type TokenIssuer } from './token-issuer.js';

/** The one user of an `htpasswd` or `token` distribution. */
export const DISTRIBUTION_USER = { username: 'angos', password: 'upstream-secret' } as const;

/**
 * `htpasswd -Bbn angos upstream-secret`: distribution reads bcrypt only, and a fixed hash spares
 * the tests apache2-utils.
 */
const HTPASSWD = 'angos:$2y$05$axfLEhMIAjyf0A.tvsKwYu5csD.mOAJAfDBawebhGlL4od74Pk8Ze\n';

export interface StartDistributionOptions {
  /**
   * `none`: anonymous pull and push. `htpasswd`: Basic auth as DISTRIBUTION_USER. `token`:
   * distribution's token auth, with a token issuer started alongside (it accepts
   * DISTRIBUTION_USER, or anonymous requests unless told otherwise).
   */
  readonly auth?: 'none' | 'htpasswd' | 'token';
  /** Serves HTTPS with this certificate; with `clientCaPath` it requires a client certificate from that CA. */
  readonly tls?: { readonly certPath: string; readonly keyPath: string; readonly clientCaPath?: string };
  /** Storage root to serve (e.g. another instance's `dataDir`); default a fresh one, removed on stop. */
  readonly dataDir?: string;
  /** Port to listen on (to restart on the same URL); default a free one. */
  readonly port?: number;
}

export interface Distribution {
  /** `http://127.0.0.1:<port>` (https with `tls`). */
  readonly url: string;
  readonly port: number;
  /** The filesystem storage root. */
  readonly dataDir: string;
  /** The token issuer of `auth: 'token'`. */
  readonly issuer: TokenIssuer | undefined;
  /** Headers that let a client push to `repository` (for seeding with OciClient and pushLayout). */
  pushHeaders(repository: string): Record<string, string>;
  /** Where the bytes of a blob lie on disk (tests corrupt them). */
  blobDataPath(digest: string): string;
  /** Everything it logged so far, access log included. */
  output(): string;
  stop(): Promise<void>;
}

const MAX_OUTPUT = 1024 * 1024;

/**
 * CNCF distribution 2.8 (Debian's `docker-registry`) on 127.0.0.1, filesystem storage, as the real
 * upstream of the pull-through tests. Throws, naming the install command, when it is missing;
 * suites skip with `skipWithout('…', 'docker-registry')` outside CI.
 */
export async function startDistribution(options: StartDistributionOptions = {}): Promise<Distribution> {
  requirePrograms('docker-registry');
  const dir = await mkdtemp(join(tmpdir(), 'angos-distribution-'));
  const dataDir = options.dataDir ?? join(dir, 'data');
  const auth = options.auth ?? 'none';
  let issuer: TokenIssuer | undefined;
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child !== undefined) await terminate(child);
    await issuer?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const port = options.port ?? (await freePort());
    const lines = [
      'version: 0.1',
      'log:',
      '  level: info',
      '  formatter: text',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${dataDir}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
    ];
    if (options.tls !== undefined) {
      lines.push('  tls:', `    certificate: ${options.tls.certPath}`, `    key: ${options.tls.keyPath}`);
      if (options.tls.clientCaPath !== undefined)
        lines.push('    clientcas:', `      - ${options.tls.clientCaPath}`);
    }
    if (auth === 'htpasswd') {
      await writeFile(join(dir, 'htpasswd'), HTPASSWD);
      lines.push('auth:', '  htpasswd:', '    realm: angos-test', `    path: ${join(dir, 'htpasswd')}`);
    }
    if (auth === 'token') {
      issuer = await startTokenIssuer({ dir, credentials: DISTRIBUTION_USER });
      lines.push(
        'auth:',
        '  token:',
        `    realm: ${issuer.realm}`,
        `    service: ${issuer.service}`,
        `    issuer: ${issuer.issuer}`,
        `    rootcertbundle: ${issuer.certPath}`,
      );
    }
    const config = join(dir, 'config.yml');
    await writeFile(config, `${lines.join('\n')}\n`);
    // It reads REGISTRY_* variables as configuration overrides; keep the environment out.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !key.startsWith('REGISTRY_')),
    );
    const started = spawn('docker-registry', ['serve', config], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    track(started);
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.length > MAX_OUTPUT) output = output.slice(-MAX_OUTPUT);
    };
    started.stdout?.on('data', collect);
    started.stderr?.on('data', collect);
    started.on('error', (error) => collect(Buffer.from(`cannot run docker-registry: ${error.message}\n`)));
    await waitListening(port, started, () => output);
    const startedIssuer = issuer;
    return {
      url: `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
      port,
      dataDir,
      issuer: startedIssuer,
      pushHeaders(repository): Record<string, string> {
        if (auth === 'htpasswd') return { authorization: basic() };
        if (startedIssuer === undefined) return {};
        const token = startedIssuer.mint([
          { type: 'repository', name: repository, actions: ['pull', 'push'] },
        ]);
        return { authorization: `Bearer ${token}` };
      },
      blobDataPath(digest) {
        const [algorithm, hex] = digest.split(':') as [string, string];
        return join(dataDir, 'docker', 'registry', 'v2', 'blobs', algorithm, hex.slice(0, 2), hex, 'data');
      },
      output: () => output,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

const basic = () =>
  `Basic ${Buffer.from(`${DISTRIBUTION_USER.username}:${DISTRIBUTION_USER.password}`).toString('base64')}`;

async function accepts(port: number): Promise<boolean> {
  const socket = new Socket();
  try {
    socket.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return true;
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

/** Until the port accepts connections; throws with its output when it exits or takes over 20 s. */
async function waitListening(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`docker-registry exited (${child.exitCode ?? child.signalCode}): ${output()}`);
    }
    if (await accepts(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`docker-registry: not listening on ${port} after 20 s: ${output()}`);
}
