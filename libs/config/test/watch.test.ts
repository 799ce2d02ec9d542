import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, type ConfigWatcher, type LoadedConfig, watchConfig } from '../src/index.js';

const config = (port: number, extra = '') =>
  `[server]\nbind_address = "127.0.0.1"\nport = ${port}\n[blob_store.fs]\nroot_dir = "/d"\n${extra}`;

type WatchEvent =
  | { kind: 'reload'; next: LoadedConfig; restartKeys: string[] }
  | { kind: 'invalid'; error: Error };

/** Records watcher callbacks and lets a test await the next one, with a deadline. */
class Recorder {
  readonly events: WatchEvent[] = [];
  private waiters: (() => void)[] = [];

  readonly handlers = {
    onReload: (next: LoadedConfig, restartKeys: string[]) => this.push({ kind: 'reload', next, restartKeys }),
    onInvalid: (error: Error) => this.push({ kind: 'invalid', error }),
  };

  private push(event: WatchEvent): void {
    this.events.push(event);
    for (const wake of this.waiters.splice(0)) wake();
  }

  async next(count = this.events.length + 1, timeoutMs = 5000): Promise<WatchEvent> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for watch event #${count}`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          wake();
        });
      });
    }
    return this.events[count - 1]!;
  }
}

const sleep = (ms: number) => new Promise((wake) => setTimeout(wake, ms));

function expectReload(event: WatchEvent, port: number, restartKeys: string[]): void {
  expect(event.kind).toBe('reload');
  if (event.kind !== 'reload') return;
  expect(event.next.config.server.port).toBe(port);
  expect(event.restartKeys).toEqual(restartKeys);
}

describe('watchConfig', () => {
  let dir: string;
  let watcher: ConfigWatcher | undefined;
  let recorder: Recorder;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'angos-watch-'));
    recorder = new Recorder();
  });

  afterEach(async () => {
    watcher?.close();
    watcher = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const start = (file: string, options = {}) => {
    watcher = watchConfig(file, recorder.handlers, { debounceMs: 50, ...options });
  };

  it('reloads after an in-place write and reports restart-only keys', async () => {
    const file = join(dir, 'config.toml');
    await writeFile(file, config(8000));
    start(file);

    await writeFile(file, config(8000, '[ui]\nenabled = true\n'));
    const first = await recorder.next();
    expectReload(first, 8000, []);
    if (first.kind === 'reload') expect(first.next.config.ui.enabled).toBe(true);

    await writeFile(file, config(9000));
    expectReload(await recorder.next(), 9000, ['server.port']);

    // Back to the port the process runs with: nothing needs a restart any more.
    await writeFile(file, config(8000));
    expectReload(await recorder.next(), 8000, []);
  });

  it('reloads after an editor-style rename over the file', async () => {
    const file = join(dir, 'config.toml');
    await writeFile(file, config(8000));
    start(file);

    const temporary = join(dir, '.config.toml.swp');
    await writeFile(temporary, config(8001));
    await rename(temporary, file);
    expectReload(await recorder.next(), 8001, ['server.port']);
  });

  it('reloads after a Kubernetes ConfigMap symlink swap', async () => {
    // config.toml -> ..data/config.toml, ..data -> ..2026_11_24_10_00_00.1, as the kubelet lays it out.
    const first = join(dir, '..2026_11_24_10_00_00.1');
    await mkdir(first);
    await writeFile(join(first, 'config.toml'), config(8000));
    await symlink('..2026_11_24_10_00_00.1', join(dir, '..data'));
    await symlink('..data/config.toml', join(dir, 'config.toml'));
    start(join(dir, 'config.toml'));

    // The kubelet writes a new timestamped directory, points ..data_tmp at it and renames it over ..data.
    const second = join(dir, '..2026_11_24_10_05_00.2');
    await mkdir(second);
    await writeFile(join(second, 'config.toml'), config(8000, '[ui]\nname = "Swapped"\n'));
    await symlink('..2026_11_24_10_05_00.2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await rm(first, { recursive: true });

    const event = await recorder.next();
    expectReload(event, 8000, []);
    if (event.kind === 'reload') expect(event.next.config.ui.name).toBe('Swapped');
  });

  it('reports an invalid edit, keeps going, and reloads the next valid one', async () => {
    const file = join(dir, 'config.toml');
    await writeFile(file, config(8000));
    start(file);

    await writeFile(file, config(8000, '[global]\nfoo = 1\n'));
    const invalid = await recorder.next();
    expect(invalid.kind).toBe('invalid');
    if (invalid.kind === 'invalid') {
      expect(invalid.error).toBeInstanceOf(ConfigError);
      expect(invalid.error.message).toBe('global.foo: unknown option');
    }

    await writeFile(file, config(8000, '[global]\nmax_blob_size = "1GiB"\n'));
    const valid = await recorder.next();
    expectReload(valid, 8000, []);
    if (valid.kind === 'reload') expect(valid.next.config.global.max_blob_size).toBe(1024 ** 3);
  });

  it('reports a syntax error with its line', async () => {
    const file = join(dir, 'config.toml');
    await writeFile(file, config(8000));
    start(file);
    await writeFile(file, '[server\n');
    const event = await recorder.next();
    expect(event.kind === 'invalid' && (event.error as ConfigError).issues[0]?.line).toBe(1);
  });

  it('coalesces a burst of writes into one reload of the last content', async () => {
    const file = join(dir, 'config.toml');
    await writeFile(file, config(8000));
    start(file, { debounceMs: 150 });
    for (const port of [8001, 8002, 8003, 8004]) await writeFile(file, config(port));
    expectReload(await recorder.next(), 8004, ['server.port']);
    await sleep(400);
    expect(recorder.events).toHaveLength(1);
  });

  it('ignores writes that do not change the content, and other files in the directory', async () => {
    const file = join(dir, 'config.toml');
    await writeFile(file, config(8000));
    start(file, { pollIntervalMs: 100 });
    await writeFile(file, config(8000));
    await writeFile(join(dir, 'other.toml'), config(1));
    await sleep(400);
    expect(recorder.events).toEqual([]);
  });

  it('falls back to polling for a symlink into a directory it does not watch', async () => {
    const elsewhere = join(dir, 'elsewhere');
    const watched = join(dir, 'watched');
    await mkdir(elsewhere);
    await mkdir(watched);
    await writeFile(join(elsewhere, 'config.toml'), config(8000));
    await symlink(join(elsewhere, 'config.toml'), join(watched, 'config.toml'));
    start(join(watched, 'config.toml'), { pollIntervalMs: 100 });

    await writeFile(join(elsewhere, 'config.toml'), config(8000, '[ui]\nenabled = true\n'));
    expectReload(await recorder.next(), 8000, []);
  });

  it('compares restart-only keys with the given initial configuration', async () => {
    const file = join(dir, 'config.toml');
    await writeFile(file, config(9000));
    const { parseConfig } = await import('../src/index.js');
    start(file, { initial: parseConfig(config(8000)).config });
    await writeFile(file, config(9000, '[ui]\nenabled = true\n'));
    expectReload(await recorder.next(), 9000, ['server.port']);
  });

  it('stops reporting after close()', async () => {
    const file = join(dir, 'config.toml');
    await writeFile(file, config(8000));
    start(file, { pollIntervalMs: 100 });
    watcher?.close();
    await writeFile(file, config(8001));
    await sleep(400);
    expect(recorder.events).toEqual([]);
  });
});
