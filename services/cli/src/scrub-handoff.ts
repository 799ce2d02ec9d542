import { createHash } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { chmod, mkdtemp, rename, rm, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import type { Config } from '@angos/config';
import { createLogger, type Logger } from '@angos/observability';
import { CliError, failureLines } from './errors.js';
import { INSTANCE_LOCK_DIR } from './instance-lock.js';
import { executeScrub, planScrub, SCRUB_FLAG_NAMES, type ScrubFlags, type ScrubStores } from './scrub.js';

/**
 * Scrub handed off to the live server. Under the `"memory"` lock strategy one process writes an
 * fs metadata directory (instance-lock.ts): its locks exclude only within it, and it caches
 * listings. A repairing `angos scrub` started beside such a server therefore does not write
 * itself: it sends its flags over a Unix socket in the instance lock's directory, and the server
 * runs the very same scrub (scrub.ts `executeScrub`) in its own process, over its registry, link
 * cache and locks, streaming back every byte the run writes to stderr and, last, its outcome.
 *
 * The protocol is one JSON object per line. The client sends one `HandoffRequest`; the server
 * answers `{"stderr": "…"}` lines, then `{"exit": 0}` or `{"exit": 1, "lines": […]}` (the lines a
 * local run prints when it fails). The client going away (a signal, SIGKILL) closes the socket,
 * which aborts the run as a killed scrub stops: between keys, never inside a repair; the next run
 * finishes the job. The socket is owner-only (0600): whoever may write the store may scrub it.
 */

/** The socket's name in the instance lock's directory (instance-lock.ts ignores all but numbers). */
const SOCKET_NAME = 'scrub.sock';

/** sun_path holds 108 bytes on Linux, the terminating NUL included. */
export const MAX_SOCKET_PATH_BYTES = 107;

/** What a `angos scrub` sends: its flags and what the server needs to print as it would. */
export interface HandoffRequest {
  readonly flags: ScrubFlags;
  /** sha256 of the client's loaded configuration: the server warns when its own differs. */
  readonly configHash: string;
  /** The `-c` file, for that warning. */
  readonly configPath: string;
  /** The client's RUST_LOG. */
  readonly logFilter?: string | undefined;
  /** Whether the client's stderr is a terminal: text logs and progress, as a local run. */
  readonly tty: boolean;
}

type HandoffExit = { exit: 0 | 1; lines?: readonly string[] };
type HandoffFrame = { stderr: string } | HandoffExit;

function isHandoffRequest(frame: unknown): frame is HandoffRequest {
  if (typeof frame !== 'object' || frame === null) return false;
  const request = frame as Partial<HandoffRequest>;
  return (
    typeof request.flags === 'object' &&
    request.flags !== null &&
    typeof request.configHash === 'string' &&
    typeof request.configPath === 'string' &&
    typeof request.tty === 'boolean' &&
    (request.logFilter === undefined || typeof request.logFilter === 'string')
  );
}

/** The hand-off socket of a metadata root, or why there can be none. */
export function handoffSocketPath(root: string): { path: string } | { unusable: string } {
  const path = join(resolve(root), INSTANCE_LOCK_DIR, SOCKET_NAME);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    return {
      unusable: `${path} is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a Unix socket path may have`,
    };
  }
  return { path };
}

/** A configuration's fingerprint: the same file parses to the same one. */
export function configHash(config: Config): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex');
}

/** Splits a socket's data into lines of JSON. */
function onFrames(socket: Socket, handle: (frame: unknown) => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      let frame: unknown;
      try {
        frame = JSON.parse(line);
      } catch {
        socket.destroy();
        return;
      }
      handle(frame);
    }
  });
}

const send = (socket: Socket, frame: HandoffFrame) => {
  if (!socket.destroyed) socket.write(`${JSON.stringify(frame)}\n`);
};

export interface HandoffServerDeps {
  /** The metadata root whose instance lock this process holds. */
  readonly root: string;
  /** The process's live configuration: a handed-off run uses it. */
  readonly config: () => Config;
  readonly stores: ScrubStores;
  readonly logger: Logger;
  /** How the holder names itself in a refusal (`angos server`). */
  readonly command: string;
}

export interface HandoffServer {
  /** Stops listening, removes the socket; a run in progress is aborted and awaited. */
  close(): Promise<void>;
}

/**
 * Listens on a Unix socket at `path` that only its owner may connect to (0600) from the moment it
 * exists: bound in a fresh owner-only directory beside it, made 0600, then renamed into place.
 * Not by narrowing the umask around listen(): a serving thread (`[server] workers`) may not
 * change the process's umask, and another thread could create files meanwhile.
 */
async function listenOwnerOnly(server: Server, path: string): Promise<void> {
  const staging = await mkdtemp(join(dirname(path), '.h'));
  try {
    const bound = join(staging, 's');
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject);
      server.listen(bound, () => {
        server.off('error', reject);
        resolveListen();
      });
    });
    await chmod(bound, 0o600);
    await rename(bound, path);
  } catch (error) {
    server.close();
    throw error;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Listens for hand-offs on the metadata root's socket. Called by the holder of the instance lock
 * only: a socket already there is a dead holder's (nothing else may create it), removed first.
 * Undefined, with a warning, when the path is too long for a socket: scrub then refuses as it
 * does beside a server that cannot take its run.
 */
export async function startHandoffServer(deps: HandoffServerDeps): Promise<HandoffServer | undefined> {
  const logger = deps.logger.child('angos::scrub_handoff');
  const socketPath = handoffSocketPath(deps.root);
  if (!('path' in socketPath)) {
    logger.warn('scrub hand-off disabled: a repairing `angos scrub` will refuse beside this process', {
      reason: socketPath.unusable,
    });
    return undefined;
  }
  const path = socketPath.path;
  let current: { abort: AbortController; done: Promise<void> } | undefined;
  let closing = false;

  const server: Server = createServer((socket) => {
    socket.on('error', () => {});
    let received = false;
    onFrames(socket, (frame) => {
      if (received) return;
      received = true;
      if (closing) {
        send(socket, {
          exit: 1,
          lines: [`scrub: ${deps.command} is shutting down; run scrub again once it runs`],
        });
        socket.end();
        return;
      }
      if (current !== undefined) {
        send(socket, {
          exit: 1,
          lines: [
            `scrub: another scrub already runs in ${deps.command} (pid ${process.pid}), handed off to it; ` +
              'one runs at a time: wait for it to end',
          ],
        });
        socket.end();
        return;
      }
      if (!isHandoffRequest(frame)) {
        send(socket, { exit: 1, lines: ['scrub: the hand-off request does not parse'] });
        socket.end();
        return;
      }
      const abort = new AbortController();
      socket.once('close', () => abort.abort(new Error('the scrub client went away')));
      const done = runHandoff(frame, socket, abort.signal, deps, logger).finally(() => {
        current = undefined;
      });
      current = { abort, done };
    });
  });

  await unlink(path).catch(() => {});
  await listenOwnerOnly(server, path);
  // A process.exit() skips close(): the socket goes with the lock's file (the next holder would remove it).
  const onExit = () => {
    try {
      unlinkSync(path);
    } catch {}
  };
  process.once('exit', onExit);
  logger.debug('scrub hand-off listening', { path });

  let closed: Promise<void> | undefined;
  return {
    close() {
      closed ??= (async () => {
        closing = true;
        const running = current;
        running?.abort.abort(new Error(`${deps.command} is shutting down`));
        await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
        await running?.done;
        process.off('exit', onExit);
        await unlink(path).catch(() => {});
      })();
      return closed;
    },
  };
}

/** One handed-off run: the client's flags, this process's configuration and stores. */
async function runHandoff(
  request: HandoffRequest,
  socket: Socket,
  signal: AbortSignal,
  deps: HandoffServerDeps,
  logger: Logger,
): Promise<void> {
  const stderr = (text: string) => send(socket, { stderr: text });
  const destination = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      stderr(String(chunk));
      callback();
    },
  });
  const config = deps.config();
  // The logger the client's own run would make: its filter, text on a terminal, JSON otherwise.
  const runLogger = createLogger({
    destination,
    format: request.tty ? 'text' : 'json',
    filter: request.logFilter,
    batch: false,
  }).child('scrub');
  logger.info('scrub handed off', { flags: JSON.stringify(request.flags) });
  let outcome: HandoffFrame;
  try {
    const flags = Object.fromEntries(
      Object.entries(request.flags).filter(([name]) => SCRUB_FLAG_NAMES.includes(name)),
    );
    const plan = planScrub(flags);
    if (plan.dryRun) throw new CliError(['scrub: a dry run reads, and runs in its own process']);
    if (request.configHash !== configHash(config)) {
      runLogger.warn(
        `${deps.command} runs the scrub with the configuration it loaded, not the -c file given`,
        {
          config: request.configPath,
        },
      );
    }
    await executeScrub(plan, {
      config,
      logger: runLogger,
      progress: { isTTY: request.tty, write: stderr },
      stores: deps.stores,
      signal,
    });
    outcome = { exit: 0 };
  } catch (error) {
    if (signal.aborted) {
      logger.info('handed-off scrub stopped', { reason: String(signal.reason?.message ?? signal.reason) });
      outcome = {
        exit: 1,
        lines: [`scrub: stopped before the end (${deps.command} is shutting down); run it again to finish`],
      };
    } else {
      outcome = { exit: 1, lines: failureLines(error) };
    }
  }
  logger.info('handed-off scrub ended', { exit: outcome.exit });
  send(socket, outcome);
  socket.end();
}

/**
 * Hands a repairing run to the server listening on `path`: prints what the run writes to stderr
 * as it comes, and resolves when it ends (CliError, with the lines a local run prints, when it
 * failed). Rejects with the connection's error (ENOENT, ECONNREFUSED: nothing listens) before
 * anything was printed.
 */
export async function handOffScrub(
  path: string,
  request: HandoffRequest,
  stderr: NodeJS.WritableStream = process.stderr,
): Promise<void> {
  const socket = connect(path);
  await new Promise<void>((resolveConnect, reject) => {
    socket.once('connect', () => {
      socket.off('error', reject);
      resolveConnect();
    });
    socket.once('error', reject);
  });
  socket.write(`${JSON.stringify(request)}\n`);
  const exit = await new Promise<HandoffExit>((resolveRun, reject) => {
    let ended = false;
    onFrames(socket, (frame) => {
      const value = frame as Partial<{ stderr: string; exit: 0 | 1; lines: string[] }>;
      if (typeof value.stderr === 'string') stderr.write(value.stderr);
      else if (value.exit !== undefined) {
        ended = true;
        resolveRun(value as HandoffExit);
      }
    });
    socket.on('error', () => {});
    socket.once('close', () => {
      if (!ended) {
        reject(
          new CliError([
            'scrub: the server handling the run closed the connection before it ended; run scrub again to finish',
          ]),
        );
      }
    });
  });
  socket.end();
  if (exit.exit !== 0) throw new CliError(exit.lines ?? ['scrub: the handed-off run failed']);
}
