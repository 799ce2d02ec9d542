import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createLogger, type LoggerOptions } from '../src/index.js';

/** A logger writing into memory; `lines()` lets pending writes land first. */
function capture(options: Omit<LoggerOptions, 'destination'> = {}) {
  const destination = new PassThrough();
  let output = '';
  destination.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const logger = createLogger({ format: 'json', ...options, destination });
  return {
    logger,
    async lines(): Promise<string[]> {
      await new Promise((resolve) => setImmediate(resolve));
      return output.split('\n').filter((line) => line !== '');
    },
    async records(): Promise<Record<string, unknown>[]> {
      return (await this.lines()).map((line) => JSON.parse(line) as Record<string, unknown>);
    },
  };
}

describe('createLogger', () => {
  it('writes one JSON record per call with the fields flattened', async () => {
    const out = capture();
    out.logger.info('upload completed', { namespace: 'team/app', size: 12 });
    const [record] = await out.records();
    expect(record).toMatchObject({
      level: 'INFO',
      target: 'angos',
      message: 'upload completed',
      namespace: 'team/app',
      size: 12,
    });
    expect(Date.parse(String(record?.['timestamp']))).not.toBeNaN();
  });

  it('writes values as JSON.stringify would, whatever they hold', async () => {
    const out = capture();
    const fields = {
      plain: 'team/app:v1',
      quoted: 'say "hi" \\ there',
      control: 'line\nbreak\ttab\u0001',
      unicode: 'café ☕ \u2028',
      integer: 42,
      fraction: 0.125,
      negative: -3,
      infinite: Number.POSITIVE_INFINITY,
      nan: Number.NaN,
      yes: true,
      no: false,
      nothing: null,
      nested: { list: [1, 'two', { three: 3 }] },
      big: 12345678901234567890n,
      skipped: undefined,
      fn: () => 1,
      'odd "key"': 1,
      level: 'spoof',
    };
    out.logger.info('all kinds', fields);
    const [line] = await out.lines();
    const record = JSON.parse(line ?? '') as Record<string, unknown>;
    expect(record).toEqual({
      timestamp: expect.any(String),
      level: 'INFO',
      target: 'angos',
      message: 'all kinds',
      plain: 'team/app:v1',
      quoted: 'say "hi" \\ there',
      control: 'line\nbreak\ttab\u0001',
      unicode: 'café ☕ \u2028',
      integer: 42,
      fraction: 0.125,
      negative: -3,
      infinite: null,
      nan: null,
      yes: true,
      no: false,
      nothing: null,
      nested: { list: [1, 'two', { three: 3 }] },
      big: '12345678901234567890',
      'odd "key"': 1,
      'field.level': 'spoof',
    });
  });

  it('with batch, writes the info lines of one event-loop turn together, warnings at once', async () => {
    const destination = new PassThrough();
    const writes: string[] = [];
    const write = destination.write.bind(destination);
    destination.write = ((chunk: string) => {
      writes.push(chunk);
      return write(chunk);
    }) as typeof destination.write;
    const logger = createLogger({ format: 'json', destination, batch: true });
    logger.info('one');
    logger.info('two');
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toHaveLength(1);
    expect(writes[0]?.split('\n').filter((line) => line !== '')).toHaveLength(2);

    logger.info('three');
    logger.warn('four');
    // The warning goes out at once, after the line that waited.
    expect(writes).toHaveLength(2);
    const messages = (writes[1] ?? '')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => (JSON.parse(line) as { message: string }).message);
    expect(messages).toEqual(['three', 'four']);
  });

  it('writes the lines still waiting when the process exits', async () => {
    const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const script = `import { createLogger } from ${JSON.stringify(dist)};
      const logger = createLogger({ format: 'json' });
      logger.info('last words');
      process.exit(3);`;
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ['--input-type=module', '-e', script], (_error, _out, err) =>
        resolve({ code: child.exitCode, stderr: err }),
      );
    });
    expect(code).toBe(3);
    expect(stderr).toContain('"message":"last words"');
  });

  it('filters by level, info by default', async () => {
    const out = capture();
    out.logger.debug('hidden');
    out.logger.trace('hidden');
    out.logger.warn('shown');
    out.logger.error('shown too');
    expect((await out.records()).map((r) => r['level'])).toEqual(['WARN', 'ERROR']);
    expect(out.logger.isEnabled('info')).toBe(true);
    expect(out.logger.isEnabled('debug')).toBe(false);
  });

  it('gives children their module target and filters them by it', async () => {
    const out = capture({ filter: 'warn,angos::registry=debug' });
    const registry = out.logger.child('registry');
    const upload = registry.child('upload');
    const gateway = out.logger.child('gateway');
    expect(registry.target).toBe('angos::registry');
    expect(upload.target).toBe('angos::registry::upload');
    expect(out.logger.child('angos::lock').target).toBe('angos::lock');

    registry.debug('registry debug');
    upload.debug('upload debug');
    upload.trace('upload trace');
    gateway.info('gateway info');
    gateway.warn('gateway warn');
    expect((await out.records()).map((r) => [r['target'], r['message']])).toEqual([
      ['angos::registry', 'registry debug'],
      ['angos::registry::upload', 'upload debug'],
      ['angos::gateway', 'gateway warn'],
    ]);
  });

  it('turns everything off with `off`', async () => {
    const out = capture({ filter: 'off' });
    out.logger.error('nothing');
    expect(await out.lines()).toEqual([]);
  });

  it('warns about directives it ignores and keeps the rest', async () => {
    const out = capture({ filter: 'debug,angos=loud' });
    out.logger.debug('still debug');
    expect(await out.records()).toEqual([
      expect.objectContaining({
        level: 'WARN',
        message: 'ignoring invalid log filter directive',
        directive: 'angos=loud',
      }),
      expect.objectContaining({ level: 'DEBUG', message: 'still debug' }),
    ]);
  });

  it('does not build the record when the level is disabled', () => {
    const out = capture({ filter: 'info' });
    const fields = {
      get expensive(): string {
        throw new Error('fields of a disabled level must not be read');
      },
    };
    expect(() => out.logger.debug('skipped', fields)).not.toThrow();
  });

  it('keeps reserved keys and serializes errors with their stack', async () => {
    const out = capture();
    const error = Object.assign(new Error('disk full'), { code: 'ENOSPC' });
    out.logger.error('write failed', { message: 'spoof', level: 'spoof', error });
    const [record] = await out.records();
    expect(record).toMatchObject({ level: 'ERROR', message: 'write failed', 'field.message': 'spoof' });
    expect(record?.['error']).toMatchObject({ name: 'Error', message: 'disk full', code: 'ENOSPC' });
    expect(String((record?.['error'] as { stack?: string } | undefined)?.stack)).toContain('disk full');
  });

  it('survives circular fields', async () => {
    const out = capture();
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    expect(() => out.logger.info('circular', { circular })).not.toThrow();
    expect(await out.lines()).toHaveLength(1);
  });

  it('writes readable text lines in text format', async () => {
    const out = capture({ format: 'text' });
    out.logger.child('gateway').info('listening', { host: '127.0.0.1', port: 8000, note: 'two words' });
    const [line] = await out.lines();
    expect(line).toMatch(
      /^\d{4}-\d\d-\d\dT\S+Z {2}INFO angos::gateway: listening host=127\.0\.0\.1 port=8000 note="two words"$/,
    );
  });
});
