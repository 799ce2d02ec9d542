import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, statSync, watch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError } from './errors.js';
import { type LoadedConfig, parseConfig, readFailure } from './parse.js';
import { restartRequiredChanges } from './restart.js';
import type { Config } from './types.js';

export interface ConfigWatcher {
  close(): void;
}

export interface ConfigWatchHandlers {
  /**
   * A changed file that parsed and validated. `restartKeys` lists the restart-only options whose
   * value differs from the baseline (what the process started with): log them, keep the old values.
   */
  onReload(next: LoadedConfig, restartKeys: string[]): void;
  /** A changed file that cannot be used; the running configuration stays in force. */
  onInvalid(error: ConfigError | Error): void;
}

export interface ConfigWatchOptions {
  /** Quiet time after the last change before the file is read; editors write in bursts. Default 100. */
  debounceMs?: number;
  /** Stat poll period, the fallback for changes the directory watch misses. Default 2000. */
  pollIntervalMs?: number;
  /**
   * The configuration the process is running, for restart-only comparisons. Defaults to the file's
   * content when the watch starts (or the first valid version, if it is invalid then).
   */
  initial?: Config;
}

/**
 * Watches a configuration file for changes and reloads it.
 *
 * The file's directory is watched, not the file: editors save by writing a new file and renaming
 * it over the old one, and Kubernetes updates a ConfigMap volume by atomically re-pointing the
 * `..data` symlink (`config.toml -> ..data/config.toml`), and a watch on the old file would see
 * neither. Events for the file's own name and for `..`-prefixed entries (`..data`, `..data_tmp`)
 * trigger a check; a low-frequency stat poll (through the symlink: inode, size, times) catches
 * anything the watch misses. A check reads the file through any symlinks and compares a content
 * hash with the last version handled, so spurious events and touch-only changes cost nothing.
 */
export function watchConfig(
  path: string,
  handlers: ConfigWatchHandlers,
  options: ConfigWatchOptions = {},
): ConfigWatcher {
  const file = resolve(path);
  const name = basename(file);
  const debounceMs = options.debounceMs ?? 100;
  const pollIntervalMs = options.pollIntervalMs ?? 2000;

  let closed = false;
  let baseline = options.initial;
  let lastContent = contentKeySync(file);
  let lastStat = statKeySync(file);
  if (baseline === undefined) baseline = tryParse(file, path);

  let debounce: NodeJS.Timeout | undefined;
  let checking = false;
  let recheck = false;

  const schedule = () => {
    if (closed) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => void run(), debounceMs);
    debounce.unref();
  };

  // One check at a time; a change during a check schedules another, so the last write always wins.
  const run = async () => {
    if (checking) {
      recheck = true;
      return;
    }
    checking = true;
    try {
      await check();
    } finally {
      checking = false;
      if (recheck) {
        recheck = false;
        schedule();
      }
    }
  };

  const check = async () => {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (error) {
      const key = `error:${(error as NodeJS.ErrnoException).code ?? 'unknown'}`;
      if (closed || key === lastContent) return;
      lastContent = key;
      handlers.onInvalid(new ConfigError([{ path: file, message: readFailure(error) }], path));
      return;
    }
    const key = hash(bytes);
    if (closed || key === lastContent) return;
    lastContent = key;
    let next: LoadedConfig;
    try {
      next = parseConfig(bytes.toString('utf8'), path);
    } catch (error) {
      if (!closed) handlers.onInvalid(error as Error);
      return;
    }
    if (closed) return;
    const restartKeys = baseline ? restartRequiredChanges(baseline, next.config) : [];
    baseline ??= next.config;
    handlers.onReload(next, restartKeys);
  };

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      const entry = changed?.toString();
      if (entry === undefined || entry === name || entry.startsWith('..')) schedule();
    });
    // A lost watch (directory removed, watcher limit) leaves the poll in charge.
    watcher.on('error', () => {
      watcher?.close();
      watcher = undefined;
    });
  } catch {
    watcher = undefined;
  }

  const poll = setInterval(() => {
    void statKey(file).then((key) => {
      if (key === lastStat) return;
      lastStat = key;
      schedule();
    });
  }, pollIntervalMs);
  poll.unref();

  return {
    close() {
      closed = true;
      clearTimeout(debounce);
      clearInterval(poll);
      watcher?.close();
      watcher = undefined;
    },
  };
}

function hash(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function contentKeySync(file: string): string {
  try {
    return hash(readFileSync(file));
  } catch (error) {
    return `error:${(error as NodeJS.ErrnoException).code ?? 'unknown'}`;
  }
}

function tryParse(file: string, source: string): Config | undefined {
  try {
    return parseConfig(readFileSync(file, 'utf8'), source).config;
  } catch {
    return undefined;
  }
}

type StatLike = { ino: number; size: number; mtimeMs: number; ctimeMs: number };

function describeStat(stats: StatLike): string {
  return `${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
}

function statKeySync(file: string): string {
  try {
    return describeStat(statSync(file));
  } catch (error) {
    return `error:${(error as NodeJS.ErrnoException).code ?? 'unknown'}`;
  }
}

async function statKey(file: string): Promise<string> {
  try {
    return describeStat(await stat(file));
  } catch (error) {
    return `error:${(error as NodeJS.ErrnoException).code ?? 'unknown'}`;
  }
}
