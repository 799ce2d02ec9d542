import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { Socket } from 'node:net';
import { requirePrograms } from './optional.js';
import { freePort } from './ports.js';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /**
   * SIGKILLs redis-server, waits `downMs`, and starts a new one on the same port: a Redis
   * without persistence that crashed and came back, every key gone (lock-loss tests).
   */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

async function answersPing(port: number): Promise<boolean> {
  const socket = new Socket();
  try {
    socket.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('PING\r\n');
    const [data] = (await once(socket, 'data')) as [Buffer];
    return data.toString().startsWith('+PONG');
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

/** A redis-server on `port`, once it answers PING; throws when it exits first (port taken). */
async function spawnOn(binary: string, port: number): Promise<ChildProcess> {
  const child: ChildProcess = spawn(
    binary,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const spawnError = once(child, 'error').then(([error]) => error as Error);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && child.exitCode === null) {
    const ready = await Promise.race([answersPing(port), spawnError]);
    if (ready instanceof Error)
      throw new Error(`cannot run ${binary} (apt-get install redis-server): ${ready.message}`);
    if (ready) return child;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await kill(child);
  throw new Error(`redis-server did not start on port ${port}: ${stderr}`);
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}

/**
 * A throwaway `redis-server` (Debian's package) on a free port of 127.0.0.1, without
 * persistence. Throws, naming the install command, when the binary is missing; suites that need
 * it skip with `skipWithout('…', 'redis-server')` outside CI.
 */
export async function startRedisServer(binary = 'redis-server'): Promise<RedisServer> {
  requirePrograms(binary);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    let current: ChildProcess;
    try {
      current = await spawnOn(binary, port);
    } catch (error) {
      // Another process may have taken the port in between: try another one, a few times.
      if (attempt >= 3 || (error as Error).message.startsWith('cannot run')) throw error;
      continue;
    }
    return {
      url: `redis://127.0.0.1:${port}`,
      port,
      async restart(downMs = 0) {
        await kill(current);
        if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
        current = await spawnOn(binary, port);
      },
      async stop() {
        await kill(current);
      },
    };
  }
}
