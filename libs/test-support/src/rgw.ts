import { spawn } from 'node:child_process';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RGW_PROGRAMS, requirePrograms } from './optional.js';
import { portIsFree } from './ports.js';

/**
 * A throw-away single-node Ceph RGW, the real S3 server of the tests and of the README's S3 quick
 * start: one monitor, one OSD (memstore: data in RAM) and radosgw, from Debian's packages, all on
 * 127.0.0.1, no systemd. The daemons run in the background until `stopRgw` (they outlive the
 * process that started them, so a CLI can start one for a shell session).
 */

/** Where an S3 server is; plain data, so vitest can hand it from global set-up to test files. */
export interface S3Endpoint {
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface RgwOptions {
  /** The S3 port; the monitor uses port + 1 and the OSD port + 2 … port + 9. */
  port: number;
  /** Holds configuration, logs, pid files and data; default `$TMPDIR/angos-rgw-<port>`. */
  dataDir?: string;
  bucket?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** 'memstore' (fast, data in RAM) or 'bluestore' (an 8 GiB sparse file, lower RSS); default $CEPH_OBJECTSTORE or memstore. */
  objectStore?: 'memstore' | 'bluestore';
  /** For the whole start-up; default 120 s. */
  timeoutMs?: number;
  /** Progress lines; default none. */
  log?: (line: string) => void;
}

/** The test user's keys: fixed, so a README can show them. */
export const RGW_ACCESS_KEY = 'CEPHTESTACCESSKEY000';
export const RGW_SECRET_KEY = 'cephtestsecretkey0000000000000000000000';
export const RGW_REGION = 'us-east-1';
export const RGW_PORTS = 10;

/** CEPH_OBJECTSTORE=bluestore keeps the data on disk (benchmarks with large uploads). */
const defaultObjectStore = () => (process.env['CEPH_OBJECTSTORE'] === 'bluestore' ? 'bluestore' : 'memstore');

/** The daemons, in the order they are stopped: RGW hangs when the OSD goes first. */
const DAEMONS = ['client.rgw.s3', 'osd.0', 'mon.a'];

export function rgwDataDir(port: number): string {
  return join(tmpdir(), `angos-rgw-${port}`);
}

/** Starts RGW and creates the bucket; on failure stops what it started and throws with the logs. */
export async function startRgw(options: RgwOptions): Promise<S3Endpoint> {
  requirePrograms(...RGW_PROGRAMS);
  const { port } = options;
  const dir = options.dataDir ?? rgwDataDir(port);
  const bucket = options.bucket ?? 'test-bucket';
  const accessKeyId = options.accessKeyId ?? RGW_ACCESS_KEY;
  const secretAccessKey = options.secretAccessKey ?? RGW_SECRET_KEY;
  const log = options.log ?? (() => {});
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (let p = port; p < port + RGW_PORTS; p++) {
    if (!(await portIsFree(p))) throw new Error(`port ${p} (of ${port}-${port + RGW_PORTS - 1}) is in use`);
  }
  if (existsSync(dir) && !existsSync(join(dir, 'ceph.conf')) && (await readdir(dir)).length > 0) {
    throw new Error(`${dir} exists and is not an RGW data directory`);
  }
  await stopRgw(dir);
  for (const sub of ['mon', 'osd/ceph-0', 'run', 'log', 'crash', 'rgw'])
    await mkdir(join(dir, sub), { recursive: true });
  const conf = join(dir, 'ceph.conf');
  await writeFile(conf, cephConf(dir, port, options.objectStore ?? defaultObjectStore()));
  const env = { ...process.env, CEPH_CONF: conf };
  const timeLeft = () => Math.max(1000, deadline - Date.now());
  const ceph = (cmd: string, ...args: string[]) => exec(cmd, args, env, timeLeft());
  const daemon = (cmd: string, ...args: string[]) =>
    exec(cmd, args, env, timeLeft(), join(dir, 'log', 'setup.log'));
  try {
    log(`starting Ceph RGW on 127.0.0.1:${port} (data in ${dir})`);
    await ceph(
      'monmaptool',
      '--create',
      '--addv',
      'a',
      `[v2:127.0.0.1:${port + 1}]`,
      '--fsid',
      randomUUID(),
      join(dir, 'monmap'),
    );
    await ceph(
      'ceph-authtool',
      '--create-keyring',
      join(dir, 'keyring'),
      '--gen-key',
      '-n',
      'mon.',
      '--cap',
      'mon',
      'allow *',
    );
    await ceph(
      'ceph-mon',
      '--mkfs',
      '-i',
      'a',
      '--monmap',
      join(dir, 'monmap'),
      '--keyring',
      join(dir, 'keyring'),
    );
    await daemon('ceph-mon', '-i', 'a');
    const osdUuid = randomUUID();
    const osdId = (await ceph('ceph', '--connect-timeout', '30', 'osd', 'new', osdUuid)).trim();
    if (osdId !== '0') throw new Error(`ceph osd new gave id ${osdId}, not 0`);
    await ceph('ceph-osd', '-i', '0', '--mkfs', '--osd-uuid', osdUuid);
    await daemon('ceph-osd', '-i', '0');
    await until(deadline, 'the OSD to come up', dir, async () =>
      (await ceph('ceph', '--connect-timeout', '10', 'osd', 'stat').catch(() => '')).includes('1 up'),
    );
    log('OSD up');
    await daemon('radosgw', '-n', 'client.rgw.s3');
    const endpoint = `http://127.0.0.1:${port}`;
    await until(deadline, `radosgw to answer on ${endpoint}`, dir, async () => {
      if (readLog(dir, 'client.rgw.s3').includes('failed initializing frontend')) {
        throw new Error(`radosgw could not bind 127.0.0.1:${port}`);
      }
      return (await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2000) }).catch(() => null)) !== null;
    });
    await ceph(
      'radosgw-admin',
      'user',
      'create',
      '--uid=angos-test',
      '--display-name=angos-test',
      `--access-key=${accessKeyId}`,
      `--secret-key=${secretAccessKey}`,
    );
    const s3: S3Endpoint = { endpoint, region: RGW_REGION, bucket, accessKeyId, secretAccessKey };
    await until(
      deadline,
      `bucket ${bucket}`,
      dir,
      async () => (await s3Request(s3, 'PUT', `/${bucket}`)) === 200,
    );
    const listed = await s3Request(s3, 'GET', `/${bucket}?list-type=2`);
    if (listed !== 200) throw new Error(`bucket ${bucket} not listable (HTTP ${listed})`);
    log(`ready: ${endpoint} bucket ${bucket}`);
    return s3;
  } catch (error) {
    const logs = await logTails(dir);
    await stopRgw(dir);
    throw new Error(
      `Ceph RGW did not start: ${error instanceof Error ? error.message : String(error)}\n${logs}`,
    );
  }
}

/**
 * Stops the daemons of the RGW whose data is in `dir` (a `startRgw` dataDir), one at a time, and
 * deletes the directory. Does nothing when there is none.
 */
export async function stopRgw(dir: string): Promise<void> {
  if (!existsSync(join(dir, 'ceph.conf'))) return;
  for (const daemon of DAEMONS) {
    const pid = Number((await readFile(join(dir, 'run', `${daemon}.pid`), 'utf8').catch(() => '')).trim());
    if (!pid) continue;
    signal(pid, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (alive(pid) && Date.now() < deadline) await sleep(100);
    if (alive(pid)) signal(pid, 'SIGKILL');
  }
  await rm(dir, { recursive: true, force: true });
}

/**
 * SIGKILLs the radosgw of the RGW whose data is in `dir` (a `startRgw` dataDir), waits `downMs`,
 * and starts it again, resolving once it answers: the S3 endpoint crashes and comes back, its
 * data intact (the monitor and the OSD keep running).
 */
export async function restartRgwGateway(dir: string, downMs = 0): Promise<void> {
  const pid = readPid(dir, 'client.rgw.s3');
  if (pid === null) throw new Error(`no radosgw pid in ${dir}`);
  signal(pid, 'SIGKILL');
  const gone = Date.now() + 10_000;
  while (alive(pid) && Date.now() < gone) await sleep(50);
  if (downMs > 0) await sleep(downMs);
  const conf = join(dir, 'ceph.conf');
  const port = Number(/endpoint=127\.0\.0\.1:(\d+)/.exec(readFileSync(conf, 'utf8'))?.[1]);
  const env = { ...process.env, CEPH_CONF: conf };
  const deadline = Date.now() + 60_000;
  // The old process may hold the port for a moment after it died: try again until it binds.
  for (;;) {
    await exec('radosgw', ['-n', 'client.rgw.s3'], env, 30_000, join(dir, 'log', 'setup.log'));
    const answered = await (async () => {
      while (Date.now() < deadline) {
        const restarted = readPid(dir, 'client.rgw.s3');
        if (restarted !== null && restarted !== pid && !alive(restarted)) return false;
        if (
          (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) }).catch(
            () => null,
          )) !== null
        )
          return true;
        await sleep(200);
      }
      return false;
    })();
    if (answered) return;
    if (Date.now() >= deadline)
      throw new Error(`radosgw did not come back on port ${port}:\n${await logTails(dir)}`);
    await sleep(500);
  }
}

function cephConf(dir: string, port: number, objectStore: string): string {
  return `[global]
fsid = ${randomUUID()}
mon host = v2:127.0.0.1:${port + 1}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr1 = false
ms bind port min = ${port + 2}
ms bind port max = ${port + RGW_PORTS - 1}
ms mon client mode = crc
ms client mode = crc
auth cluster required = none
auth service required = none
auth client required = none
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
crash dir = ${dir}/crash
mon data = ${dir}/mon/$cluster-$id
osd data = ${dir}/osd/$cluster-$id
keyring = ${dir}/keyring
mon allow pool size one = true
paxos propose interval = 0.05
paxos min wait = 0.01
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
osd objectstore = ${objectStore}
memstore device bytes = 17179869184
bluestore block path = ${dir}/osd/bluestore.img
bluestore block create = true
bluestore block size = 8589934592
bluestore fsck on mount = false
osd memory target = 1073741824
osd max object size = 1073741824
[client.rgw.s3]
rgw frontends = beast endpoint=127.0.0.1:${port} tcp_nodelay=1
rgw data = ${dir}/rgw
rgw dns name = localhost
rgw enable usage log = false
`;
}

/**
 * Runs a Ceph tool to completion; resolves with its stdout. A daemon forks and its first process
 * returns: its output goes to `daemonLog`, not to a pipe the daemon would hold open.
 */
function exec(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  daemonLog?: string,
): Promise<string> {
  return new Promise((resolveExec, reject) => {
    const logFd = daemonLog === undefined ? undefined : openSync(daemonLog, 'a');
    const child = spawn(cmd, args, {
      env,
      stdio: logFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', logFd, logFd],
    });
    if (logFd !== undefined) closeSync(logFd);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${error.message}`));
    });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolveExec(stdout);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${sig ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
}

async function until(
  deadline: number,
  what: string,
  dir: string,
  check: () => Promise<boolean>,
): Promise<void> {
  for (;;) {
    const died = DAEMONS.find((daemon) => {
      const pid = readPid(dir, daemon);
      return pid !== null && !alive(pid);
    });
    if (died) throw new Error(`${died} died while waiting for ${what}`);
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(300);
  }
}

/**
 * One S3 request signed with AWS Signature V4 (unsigned payload), enough to create and list the
 * bucket without an S3 SDK. Resolves with the status, 0 when RGW does not answer.
 */
async function s3Request(s3: S3Endpoint, method: string, pathAndQuery: string): Promise<number> {
  const url = new URL(pathAndQuery, s3.endpoint);
  const now = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = now.slice(0, 8);
  const payload = 'UNSIGNED-PAYLOAD';
  const query = [...url.searchParams]
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .sort()
    .join('&');
  const headers = `host:${url.host}\nx-amz-content-sha256:${payload}\nx-amz-date:${now}\n`;
  const signed = 'host;x-amz-content-sha256;x-amz-date';
  const request = [method, url.pathname, query, headers, signed, payload].join('\n');
  const scope = `${day}/${s3.region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', now, scope, createHash('sha256').update(request).digest('hex')].join(
    '\n',
  );
  let key: Buffer = createHmac('sha256', `AWS4${s3.secretAccessKey}`).update(day).digest();
  for (const part of [s3.region, 's3', 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  const response = await fetch(url, {
    method,
    headers: {
      'x-amz-content-sha256': payload,
      'x-amz-date': now,
      authorization: `AWS4-HMAC-SHA256 Credential=${s3.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${signature}`,
    },
    signal: AbortSignal.timeout(10_000),
  }).catch(() => null);
  if (!response) return 0;
  await response.arrayBuffer();
  return response.status;
}

function readPid(dir: string, daemon: string): number | null {
  try {
    return Number(readFileSync(join(dir, 'run', `${daemon}.pid`), 'utf8').trim()) || null;
  } catch {
    return null;
  }
}

/** Whether `pid` runs; a zombie counts as dead. */
function alive(pid: number): boolean {
  try {
    return !/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

function readLog(dir: string, daemon: string): string {
  try {
    return readFileSync(join(dir, 'log', `${daemon}.log`), 'utf8');
  } catch {
    return '';
  }
}

async function logTails(dir: string): Promise<string> {
  const files = await readdir(join(dir, 'log')).catch(() => [] as string[]);
  const tails = await Promise.all(
    files.map(async (file) => {
      const lines = (await readFile(join(dir, 'log', file), 'utf8').catch(() => '')).trimEnd().split('\n');
      return `--- ${file}\n${lines.slice(-15).join('\n')}`;
    }),
  );
  return tails.join('\n');
}

const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
