import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/index.js';
import { BASE } from './helpers.js';

describe('loadConfig', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'angos-config-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads and parses a file', async () => {
    const file = join(dir, 'config.toml');
    await writeFile(file, BASE);
    const { config, warnings } = await loadConfig(file);
    expect(config.server.bind_address).toBe('127.0.0.1');
    expect(warnings).toEqual([]);
  });

  it('names the path of a missing file', async () => {
    const file = join(dir, 'missing.toml');
    const error = await loadConfig(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(`${file}: configuration file not found`);
    expect((error as ConfigError).source).toBe(file);
  });

  it('names the file in a syntax error', async () => {
    const file = join(dir, 'config.toml');
    await writeFile(file, '[server\n');
    const error = (await loadConfig(file).catch((e: unknown) => e)) as ConfigError;
    expect(error.issues[0]).toMatchObject({ path: file, line: 1 });
    expect(error.message.startsWith(`${file}: syntax error at line 1, column `)).toBe(true);
  });

  it('rejects a directory', async () => {
    const error = (await loadConfig(dir).catch((e: unknown) => e)) as ConfigError;
    expect(error.message).toBe(`${dir}: is a directory, not a configuration file`);
  });
});
