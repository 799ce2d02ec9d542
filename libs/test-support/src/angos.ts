import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { terminate, track } from './children.js';
import { OutputTail } from './output-tail.js';
import { freePort } from './ports.js';
import { angosLauncher, cliEntry } from './repo-root.js';

export type AngosMode = 'server' | 'split';

export interface StartAngosOptions {
  /**
   * `server`: one `angos server` process; `split`: `angos registry-api` behind `angos gateway`, and
   * `angos pull-through-cache` beside registry-api when the configuration has an upstream. Those two
   * both write the storage: on fs metadata the configuration must then give them a shared lock
   * strategy (Redis), or the second is refused the directory's instance lock.
   */
  mode: AngosMode;
  /**
   * Extra TOML, written first in the config file (so its top-level keys stay top-level). The
   * defaults — `[server]`, `[blob_store.fs]` and `[global.access_policy] default = "allow"` — are
   * left out when this text defines a table of the same name (`[server]`, `[blob_store.…]`,
   * `[global.access_policy]`).
   */
  config?: string;
  /** Storage root for the default `[blob_store.fs]`; default: a fresh temporary directory. */
  rootDir?: string;
  /** Extra environment variables for the registry processes. */
  env?: Record<string, string>;
  /**
   * The port clients talk to (the server, or the gateway); default a free one. For peers that
   * must name each other in their configuration before either starts (replication).
   */
  port?: number;
  /** How long to wait for `GET /v2/` to answer; default 20 s. */
  startTimeoutMs?: number;
  /** `--workers`: serving threads of each process (default: the service's own, one per CPU it may use). */
  workers?: number;
  /**
   * Runs the shipped `angos` command (angosLauncher(): Node with the flags it ships with) instead
   * of `node services/cli/dist/main.js`: for tests that measure the process (memory).
   */
  launcher?: boolean;
}

export interface AngosInstance {
  /** `http://127.0.0.1:<port>`: where clients talk to (the server, or the gateway). */
  url: string;
  /** `127.0.0.1:<port>`, the registry host in image references. */
  host: string;
  rootDir: string;
  configPath: string;
  /** The processes' ids in the order they started: the server's alone, or the client-facing gateway's last. */
  pids: number[];
  /** SIGTERM to every process, SIGKILL after 5 s; then the temporary directory is removed. */
  stop(): Promise<void>;
  /** Everything the processes printed so far, each under a header with its role. */
  logs(): string;
}

interface Spawned {
  role: string;
  child: ChildProcess;
  output: OutputTail;
}

/** True when the TOML declares a `[[repository."…".upstream]]` (a pull-through cache). */
const hasUpstream = (toml: string): boolean => /^\s*\[\[\s*repository\..*\.upstream\s*\]\]/m.test(toml);

const hasTable = (toml: string, prefix: string): boolean =>
  toml.split('\n').some((line) => line.trim().replace(/\s+/g, '').startsWith(`[${prefix}`));

function configText(options: StartAngosOptions, rootDir: string, port: number, services?: string): string {
  const extra = options.config ?? '';
  const parts = [extra];
  if (!hasTable(extra, 'server]')) {
    parts.push(`[server]\nbind_address = "127.0.0.1"\nport = ${port}`);
  }
  if (!hasTable(extra, 'blob_store.')) {
    parts.push(`[blob_store.fs]\nroot_dir = ${JSON.stringify(rootDir)}`);
  }
  if (!hasTable(extra, 'global.access_policy]')) {
    parts.push('[global.access_policy]\ndefault = "allow"');
  }
  if (services) parts.push(services);
  return `${parts.filter((p) => p.trim() !== '').join('\n\n')}\n`;
}

function spawnAngos(role: string, args: string[], env: NodeJS.ProcessEnv, launcher: boolean): Spawned {
  const [command, commandArgs] = launcher
    ? [angosLauncher(), args]
    : [process.execPath, [cliEntry(), ...args]];
  const child = spawn(command, commandArgs, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  const output = new OutputTail();
  child.stdout!.on('data', (chunk: Buffer) => output.write(chunk));
  child.stderr!.on('data', (chunk: Buffer) => output.write(chunk));
  child.once('error', (err) => output.write(`\n[spawn error] ${err.message}\n`));
  child.once('exit', (code, signal) => output.write(`\n[exited code=${code} signal=${signal}]\n`));
  return { role, child, output };
}

const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

/** Status of `GET url`, or undefined when nothing answers (refused, reset, timed out). */
async function probe(url: string): Promise<number | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return undefined;
  }
}

/**
 * Polls until `accept(status)` holds; throws (with `describe()`, the process logs) when one of
 * the processes exits or the deadline passes.
 */
async function waitFor(
  url: string,
  accept: (status: number) => boolean,
  processes: Spawned[],
  deadline: number,
  describe: () => string,
): Promise<void> {
  let last: number | undefined;
  while (Date.now() < deadline) {
    const dead = processes.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    if (dead) throw new Error(`angos ${dead.role} exited before ${url} answered\n${describe()}`);
    last = await probe(url);
    if (last !== undefined && accept(last)) return;
    await sleep(100);
  }
  throw new Error(`GET ${url} did not answer in time (last status: ${last ?? 'none'})\n${describe()}`);
}

/** Until every process has logged that all its serving threads listen. */
async function waitForAllThreads(processes: Spawned[], deadline: number, logs: () => string): Promise<void> {
  while (!processes.every((p) => p.output.toString().includes('"serving threads started"'))) {
    if (Date.now() > deadline) throw new Error(`serving threads did not all start:\n${logs()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Starts Angos from the built CLI (services/cli/dist/main.js) with a generated config in a
 * temporary directory and resolves once `GET /v2/` answers without a server error.
 */
export async function startAngos(options: StartAngosOptions): Promise<AngosInstance> {
  const workDir = await mkdtemp(join(tmpdir(), 'angos-run-'));
  const rootDir = options.rootDir ?? join(workDir, 'data');
  const configPath = join(workDir, 'config.toml');
  const env = { ...process.env, ...options.env };
  const port = options.port ?? (await freePort());
  const workers = options.workers === undefined ? [] : ['--workers', String(options.workers)];
  const launcher = options.launcher ?? false;
  const listen = (p: number) => ['--listen', `127.0.0.1:${p}`, ...workers];
  const processes: Spawned[] = [];
  const logs = () =>
    processes.map((p) => `--- angos ${p.role} (pid ${p.child.pid})\n${p.output.toString()}`).join('\n');
  const stop = async () => {
    // The gateway first, so no request reaches a registry-api that is going away.
    for (const p of [...processes].reverse()) await terminate(p.child);
    await rm(workDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 20_000);
  const url = `http://127.0.0.1:${port}`;
  try {
    if (options.mode === 'server') {
      await writeFile(configPath, configText(options, rootDir, port));
      processes.push(spawnAngos('server', ['-c', configPath, 'server', ...listen(port)], env, launcher));
    } else {
      const apiPort = await freePort();
      const cachePort = hasUpstream(options.config ?? '') ? await freePort() : undefined;
      const services = [
        '[services]',
        `registry_api_url = "http://127.0.0.1:${apiPort}"`,
        ...(cachePort === undefined ? [] : [`pull_through_cache_url = "http://127.0.0.1:${cachePort}"`]),
        `internal_token = "${randomBytes(24).toString('hex')}"`,
      ].join('\n');
      await writeFile(configPath, configText(options, rootDir, port, services));
      processes.push(
        spawnAngos('registry-api', ['-c', configPath, 'registry-api', ...listen(apiPort)], env, launcher),
      );
      // Any HTTP answer means it listens: it refuses requests the gateway has not vouched for.
      await waitFor(`http://127.0.0.1:${apiPort}/v2/`, () => true, processes, deadline, logs);
      if (cachePort !== undefined) {
        processes.push(
          spawnAngos(
            'pull-through-cache',
            ['-c', configPath, 'pull-through-cache', ...listen(cachePort)],
            env,
            launcher,
          ),
        );
        await waitFor(`http://127.0.0.1:${cachePort}/v2/`, () => true, processes, deadline, logs);
      }
      processes.push(spawnAngos('gateway', ['-c', configPath, 'gateway', ...listen(port)], env, launcher));
    }
    await waitFor(`${url}/v2/`, (status) => status < 500, processes, deadline, logs);
    // The first serving thread answers before the others listen: wait for all of them.
    if ((options.workers ?? 1) > 1) await waitForAllThreads(processes, deadline, logs);
  } catch (err) {
    await stop();
    throw err;
  }
  const pids = processes.map((p) => p.child.pid!);
  return { url, host: `127.0.0.1:${port}`, rootDir, configPath, pids, stop, logs };
}
