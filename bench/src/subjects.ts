import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEntry, freePort } from '@angos/test-support';

/** A registry under test: where it listens and which processes to measure. */
export interface Subject {
  readonly name: string;
  readonly url: string;
  readonly host: string;
  readonly pids: readonly number[];
  stop(): Promise<void>;
}

export type SubjectName = 'angos' | 'angos-split' | 'distribution';

export async function startSubject(name: SubjectName): Promise<Subject> {
  switch (name) {
    case 'angos':
      return startAngos(false);
    case 'angos-split':
      return startAngos(true);
    case 'distribution':
      return startDistribution();
  }
}

async function waitReady(url: string, children: ChildProcess[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (children.some((child) => child.exitCode !== null)) throw new Error(`${url}: process exited`);
    try {
      const reply = await fetch(`${url}/v2/`);
      if (reply.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url}: not ready after 20 s`);
}

function launch(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  // Logs are discarded: a benchmark measures, it does not debug (RUST_LOG=warn keeps angos quiet).
  return spawn(command, args, {
    stdio: process.env.BENCH_DEBUG ? 'inherit' : 'ignore',
    env: { ...env, RUST_LOG: 'warn' },
  });
}

async function stopAll(children: ChildProcess[], dir: string): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
  await rm(dir, { recursive: true, force: true });
}

async function startAngos(split: boolean): Promise<Subject> {
  const dir = await mkdtemp(join(tmpdir(), 'angos-bench-'));
  const port = await freePort();
  const apiPort = await freePort();
  const token = randomBytes(24).toString('hex');
  const config = join(dir, 'config.toml');
  await writeFile(
    config,
    [
      `[server]\nbind_address = "127.0.0.1"\nport = ${port}`,
      `[blob_store.fs]\nroot_dir = "${join(dir, 'data')}"`,
      '[global.access_policy]\ndefault = "allow"',
      split
        ? `[services]\nregistry_api_url = "http://127.0.0.1:${apiPort}"\ninternal_token = "${token}"`
        : '',
    ].join('\n'),
  );
  const cli = cliEntry();
  const children: ChildProcess[] = [];
  if (split) {
    children.push(
      launch(process.execPath, [cli, '-c', config, 'registry-api', '--listen', `127.0.0.1:${apiPort}`]),
    );
    await waitForPort(apiPort);
    children.push(launch(process.execPath, [cli, '-c', config, 'gateway']));
  } else {
    children.push(launch(process.execPath, [cli, '-c', config, 'server']));
  }
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, children);
  return {
    name: split ? 'angos-split' : 'angos',
    url,
    host: `127.0.0.1:${port}`,
    pids: children.map((child) => child.pid!),
    stop: () => stopAll(children, dir),
  };
}

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      await fetch(`http://127.0.0.1:${port}/healthz`);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`port ${port}: not listening after 20 s`);
}

/** CNCF distribution 2.8 (Debian's docker-registry) on fs, configured as plainly as possible. */
async function startDistribution(): Promise<Subject> {
  const dir = await mkdtemp(join(tmpdir(), 'distribution-bench-'));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  // It reads REGISTRY_* variables as configuration overrides; keep the environment out.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('REGISTRY_')));
  const children = [launch('docker-registry', ['serve', config], env)];
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, children);
  return {
    name: 'distribution',
    url,
    host: `127.0.0.1:${port}`,
    pids: children.map((c) => c.pid!),
    stop: () => stopAll(children, dir),
  };
}
