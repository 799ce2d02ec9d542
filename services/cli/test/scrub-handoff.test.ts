import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { INSTANCE_LOCK_DIR } from '../src/instance-lock.js';
import {
  baseConfig,
  freePort,
  type LongRunning,
  logRecords,
  MAIN,
  runAngos,
  startAngos,
  useWorkspace,
  waitForHttp,
  waitForRecord,
} from './helpers.js';

/**
 * A repairing `angos scrub` beside a live `angos server` on fs metadata with the `"memory"` lock
 * strategy is handed to that server over the instance lock's socket (scrub-handoff.ts): the server
 * runs it in its own process and streams its output back. Real processes on real directories.
 */

const ws = useWorkspace();
const env = { RUST_LOG: 'info' };
const hex = (data: string) => createHash('sha256').update(data).digest('hex');

/** A store of its own per test: `<workspace>/<name>/data`, with its config file. */
async function store(name: string): Promise<{ root: string; configPath: string }> {
  const dir = join(ws().dir, name);
  await mkdir(dir, { recursive: true });
  const configPath = join(dir, 'config.toml');
  await writeFile(configPath, baseConfig(dir, await freePort()));
  return { root: join(dir, 'data'), configPath };
}

async function put(root: string, path: string, data: string): Promise<void> {
  const file = join(root, path);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, data);
}

/** Seeds faults scrub repairs: tags whose manifest is gone, a tag name that breaks the grammar. */
async function seedFaults(root: string, tags: number): Promise<void> {
  const gone = JSON.stringify({ digest: `sha256:${hex('gone')}` });
  await put(root, 'app/_manifests/tags/-bad/link', gone);
  for (let i = 0; i < tags; i++) await put(root, `app/_manifests/tags/v${i}/link`, gone);
}

async function tagsLeft(root: string): Promise<number> {
  return (await readdir(join(root, 'app/_manifests/tags')).catch(() => [])).length;
}

const socketOf = (root: string) => join(root, INSTANCE_LOCK_DIR, 'scrub.sock');

const servers: LongRunning[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
});

async function startServer(configPath: string): Promise<LongRunning> {
  const port = await freePort();
  const server = startAngos(['-c', configPath, 'server', '--listen', `127.0.0.1:${port}`]);
  servers.push(server);
  await waitForHttp(`http://127.0.0.1:${port}/v2/`, server);
  return server;
}

const actionsOf = (stderr: string, message: string) =>
  logRecords(stderr)
    .filter((record) => record['message'] === message)
    .map(({ check, action, key, reason }) => ({ check, action, key, reason }));

const summaryOf = (stderr: string) => {
  const { timestamp: _t, ...summary } =
    logRecords(stderr).find((record) => record['message'] === 'scrub finished') ?? {};
  return summary;
};

/** A scrub whose stderr is watched as it comes (to kill it, or start another, mid-run). */
function startScrub(args: readonly string[]) {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  return {
    child,
    stderr: () => stderr,
    exited,
    async waitFor(text: string, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!stderr.includes(text)) {
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`no "${text}" in the scrub's output:\n${stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
  };
}

describe('scrub handed off to a live memory-lock server', () => {
  it('repairs in the server, as a direct run does: same lines, summary and exit status', async () => {
    const direct = await store('direct');
    const handed = await store('handed');
    await seedFaults(direct.root, 3);
    await seedFaults(handed.root, 3);

    const local = await runAngos(['-c', direct.configPath, 'scrub', '-t', '-m', '-l'], { env });
    expect(local.code, local.stderr).toBe(0);

    const server = await startServer(handed.configPath);
    const socket = socketOf(handed.root);
    expect((await stat(socket)).mode & 0o777).toBe(0o600);
    const run = await runAngos(['-c', handed.configPath, 'scrub', '-t', '-m', '-l'], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toContain('lock_strategy');
    // The server ran it: its own log says so; the client printed what the run wrote.
    await waitForRecord(server, (record) => record['message'] === 'scrub handed off');
    const repaired = actionsOf(run.stderr, 'repaired');
    expect(repaired).toHaveLength(4);
    expect(repaired).toEqual(actionsOf(local.stderr, 'repaired'));
    expect(summaryOf(run.stderr)).toEqual(summaryOf(local.stderr));
    // Same store afterwards, and the server (its link cache) sees the repair.
    expect(await tagsLeft(handed.root)).toBe(0);
    expect(await tagsLeft(direct.root)).toBe(0);
    // Same JSON line shapes: every line of the handed-off run parses, as a local run's.
    const lines = run.stderr.split('\n').filter((line) => line !== '');
    expect(lines.every((line) => line.startsWith('{'))).toBe(true);
    expect(existsSync(socket)).toBe(true);
  }, 90_000);

  it('a failing repair comes back as the exit status and the failure line', async () => {
    const { root, configPath } = await store('failing');
    // A revision without a media type, whose bytes are not a manifest: nothing to backfill from.
    const body = 'not a manifest';
    await put(root, `_blobs/sha256/${hex(body).slice(0, 2)}/${hex(body)}`, body);
    await put(
      root,
      `broken/_manifests/revisions/sha256/${hex(body)}/link`,
      JSON.stringify({ digest: `sha256:${hex(body)}` }),
    );
    const server = await startServer(configPath);
    const run = await runAngos(['-c', configPath, 'scrub', '--media-types'], { env });
    expect(run.code).toBe(1);
    expect(actionsOf(run.stderr, 'repair failed')).toHaveLength(1);
    expect(run.stderr).toContain('scrub: 1 check(s) or repair(s) failed');
    expect(summaryOf(run.stderr)).toMatchObject({ failures: 1 });
    await waitForRecord(server, (record) => record['message'] === 'handed-off scrub ended');
    // A bad flag is refused by the client itself, as before, exit 1.
    const bad = await runAngos(['-c', configPath, 'scrub', '--uploads', 'soon'], { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).not.toContain('"message"');
  }, 90_000);

  it('a SIGKILLed client stops the run in the server; the next run finishes it', async () => {
    const { root, configPath } = await store('killed');
    const total = 1500;
    await seedFaults(root, total);
    const server = await startServer(configPath);
    const first = startScrub(['-c', configPath, 'scrub', '-t']);
    await first.waitFor('"repaired"');
    first.child.kill('SIGKILL');
    await first.exited;
    const stopped = await waitForRecord(
      server,
      (record) => record['message'] === 'handed-off scrub stopped',
      60_000,
    );
    expect(String(stopped['reason'])).toContain('went away');
    const left = await tagsLeft(root);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(total + 1);
    // Resumable: the next run (handed off again: one run at a time, and that one ended) repairs the rest.
    const rest = await runAngos(['-c', configPath, 'scrub', '-t'], { env, timeoutMs: 120_000 });
    expect(rest.code, rest.stderr).toBe(0);
    expect(actionsOf(rest.stderr, 'repaired')).toHaveLength(left);
    expect(await tagsLeft(root)).toBe(0);
  }, 180_000);

  it('a second hand-off while one runs is refused, naming why; the first ends normally', async () => {
    const { root, configPath } = await store('concurrent');
    await seedFaults(root, 1500);
    await startServer(configPath);
    const first = startScrub(['-c', configPath, 'scrub', '-t']);
    await first.waitFor('"repaired"');
    const second = await runAngos(['-c', configPath, 'scrub', '-t'], { env });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('another scrub already runs in angos server');
    const [code] = await first.exited;
    expect(code, first.stderr()).toBe(0);
    expect(await tagsLeft(root)).toBe(0);
  }, 180_000);

  it('a dry run stays local; a -c file other than the server’s is warned about, not refused', async () => {
    const { root, configPath } = await store('dry');
    await seedFaults(root, 1);
    const server = await startServer(configPath);
    const dry = await runAngos(['-c', configPath, 'scrub', '-d', '-t'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(actionsOf(dry.stderr, 'would repair')).toHaveLength(2);
    expect(server.output()).not.toContain('scrub handed off');

    const other = join(dirname(configPath), 'other.toml');
    await writeFile(other, baseConfig(dirname(root), await freePort(), '[gc]\ngrace_period_secs = 60\n'));
    const run = await runAngos(['-c', other, 'scrub', '-t'], { env });
    expect(run.code, run.stderr).toBe(0);
    const warning = logRecords(run.stderr).find(
      (record) => record['level'] === 'WARN' || record['level'] === 'warn',
    );
    expect(warning?.['message']).toContain('runs the scrub with the configuration it loaded');
    expect(warning?.['config']).toBe(other);
    expect(actionsOf(run.stderr, 'repaired')).toHaveLength(2);
    // The same file: no warning.
    const same = await runAngos(['-c', configPath, 'scrub', '-t'], { env });
    expect(same.code, same.stderr).toBe(0);
    expect(same.stderr).not.toContain('configuration it loaded');
  }, 90_000);

  it('the socket leaves with the server; a SIGKILLed server’s stale socket is replaced by the next', async () => {
    const { root, configPath } = await store('lifecycle');
    const socket = socketOf(root);
    const first = await startServer(configPath);
    expect(existsSync(socket)).toBe(true);
    expect(await first.stop()).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(join(root, INSTANCE_LOCK_DIR))).toBe(false);

    const killed = await startServer(configPath);
    servers.splice(servers.indexOf(killed), 1);
    killed.child.kill('SIGKILL');
    await once(killed.child, 'exit');
    expect(existsSync(socket)).toBe(true);
    // Nothing listens: a scrub takes the (stale) lock and runs itself.
    const alone = await runAngos(['-c', configPath, 'scrub', '-t'], { env });
    expect(alone.code, alone.stderr).toBe(0);
    await startServer(configPath);
    await seedFaults(root, 1);
    const run = await runAngos(['-c', configPath, 'scrub', '-t'], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(actionsOf(run.stderr, 'repaired')).toHaveLength(2);
  }, 90_000);

  it('a request that does not parse is answered with exit 1; the server goes on', async () => {
    const { root, configPath } = await store('garbage');
    const server = await startServer(configPath);
    for (const request of ['{"flags":1}\n', 'null\n', 'not json\n']) {
      const socket = connect(socketOf(root));
      let reply = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        reply += chunk;
      });
      socket.write(request);
      await once(socket, 'close');
      if (request !== 'not json\n') expect(JSON.parse(reply)).toMatchObject({ exit: 1 });
    }
    await seedFaults(root, 1);
    const run = await runAngos(['-c', configPath, 'scrub', '-t'], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(actionsOf(run.stderr, 'repaired')).toHaveLength(2);
    expect(server.child.exitCode).toBe(null);
  }, 90_000);

  it('a socket path over 107 bytes: the server says so at start, scrub refuses naming why', async () => {
    const deep = join(ws().dir, 'x'.repeat(100));
    await mkdir(deep, { recursive: true });
    const configPath = join(deep, 'config.toml');
    await writeFile(configPath, baseConfig(deep, await freePort()));
    const server = await startServer(configPath);
    await waitForRecord(server, (record) => String(record['message']).startsWith('scrub hand-off disabled'));
    const run = await runAngos(['-c', configPath, 'scrub', '-t'], { env });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('the "memory" lock strategy allows one angos process');
    expect(run.stderr).toContain('longer than the 107 bytes a Unix socket path may have');
    await server.stop();
    await rm(deep, { recursive: true, force: true });
  }, 90_000);
});
