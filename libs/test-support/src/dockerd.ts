import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { terminate, track } from './children.js';
import { OutputTail } from './output-tail.js';

export interface StartDockerdOptions {
  /** Where the daemon keeps everything (data, exec root, socket, client config); made if missing. */
  dir: string;
  /** The environment to find `dockerd` (and containerd, runc) in; default this process's. */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the daemon to answer `/_ping`; default 60 s. */
  startTimeoutMs?: number;
  /** Docker Hub mirrors (`--registry-mirror`, daemon.json's `registry-mirrors`). */
  registryMirrors?: readonly string[];
}

export interface Dockerd {
  /** DOCKER_HOST (this daemon's socket) and DOCKER_CONFIG (a client config inside `dir`). */
  env: { DOCKER_HOST: string; DOCKER_CONFIG: string };
  /** SIGTERM, SIGKILL after 20 s (and its containerd, if it outlived it). */
  stop(): Promise<void>;
  /** What the daemon printed so far. */
  logs(): string;
  /** The socket of the containerd the daemon started (for `ctr -a`). */
  containerdSocket: string;
}

/** Status of `GET /_ping` on a unix socket, or undefined while nothing answers. */
function ping(socketPath: string): Promise<number | undefined> {
  return new Promise((resolvePing) => {
    const req = request({ socketPath, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      res.once('end', () => resolvePing(res.statusCode));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolvePing(undefined));
    req.end();
  });
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/**
 * A private Docker daemon (Debian's docker.io, 20.10) for pushing and pulling, never for running
 * containers: vfs storage, no bridge, no iptables, with its data, exec root, pid file and socket
 * under `dir`, so it neither needs nor touches the machine's docker set-up. It starts its own
 * containerd (under the exec root). 127.0.0.0/8 registries are plain HTTP to it by default.
 * Needs root, as dockerd does. (dockerd 20.10 still creates /etc/docker/key.json and
 * /run/docker/plugins; neither can be moved by a flag.)
 */
export async function startDockerd(options: StartDockerdOptions): Promise<Dockerd> {
  const { dir } = options;
  const socket = join(dir, 'docker.sock');
  const execRoot = join(dir, 'exec');
  for (const sub of ['data', 'exec', 'client-config']) await mkdir(join(dir, sub), { recursive: true });
  const args = [
    '--iptables=false',
    '--ip6tables=false',
    '--ip-masq=false',
    '--ip-forward=false',
    '--bridge=none',
    '--storage-driver=vfs',
    '--data-root',
    join(dir, 'data'),
    '--exec-root',
    execRoot,
    '--pidfile',
    join(dir, 'dockerd.pid'),
    '--host',
    `unix://${socket}`,
    ...(options.registryMirrors ?? []).flatMap((mirror) => ['--registry-mirror', mirror]),
  ];
  const child = spawn('dockerd', args, {
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  const output = new OutputTail();
  child.stdout!.on('data', (chunk: Buffer) => output.write(chunk));
  child.stderr!.on('data', (chunk: Buffer) => output.write(chunk));
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });

  const stop = async () => {
    // Read containerd's pid first: the daemon removes the file when it stops containerd itself.
    const containerdPid = await readFile(join(execRoot, 'containerd', 'containerd.pid'), 'utf8').then(
      (text) => Number.parseInt(text, 10),
      () => undefined,
    );
    await terminate(child, 20_000);
    if (containerdPid !== undefined && containerdPid > 0) {
      try {
        process.kill(containerdPid, 'SIGKILL');
      } catch {
        // Already gone, as it should be after a clean daemon shutdown.
      }
    }
    // vfs keeps a full copy of every layer: free the space now, not when the suite's dir goes.
    await rm(join(dir, 'data'), { recursive: true, force: true }).catch(() => {});
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  while ((await ping(socket)) !== 200) {
    if (spawnError || !running(child) || Date.now() > deadline) {
      await stop();
      const why = spawnError
        ? `cannot run dockerd (apt-get install docker.io): ${spawnError.message}`
        : running(child)
          ? 'dockerd did not answer /_ping in time'
          : `dockerd exited (code ${child.exitCode}, signal ${child.signalCode})`;
      throw new Error(`${why}\n${output.toString()}`);
    }
    await new Promise((resolveSleep) => setTimeout(resolveSleep, 200));
  }
  return {
    env: { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(dir, 'client-config') },
    stop,
    logs: () => output.toString(),
    containerdSocket: join(execRoot, 'containerd', 'containerd.sock'),
  };
}
