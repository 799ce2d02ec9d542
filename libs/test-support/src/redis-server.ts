import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { Socket } from 'node:net';
import { requirePrograms } from './optional.js';
import { freePort } from './ports.js';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
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

/**
 * A throwaway `redis-server` (Debian's package) on a free port of 127.0.0.1, without
 * persistence. Throws, naming the install command, when the binary is missing; suites that need
 * it skip with `skipWithout('…', 'redis-server')` outside CI.
 */
export async function startRedisServer(binary = 'redis-server'): Promise<RedisServer> {
  requirePrograms(binary);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
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
      if (ready) {
        return {
          url: `redis://127.0.0.1:${port}`,
          port,
          async stop() {
            if (child.exitCode !== null || child.signalCode !== null) return;
            child.kill('SIGKILL');
            await once(child, 'exit');
          },
        };
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGKILL');
    // Another process may have taken the port in between: try another one, a few times.
    if (attempt >= 3) throw new Error(`redis-server did not start: ${stderr}`);
  }
}
