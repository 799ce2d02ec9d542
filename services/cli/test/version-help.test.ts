import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMANDS, flagSynopsis, GLOBAL_FLAGS } from '../src/commands/flags.js';
import { runAngos } from './helpers.js';

const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const VERSION = (JSON.parse(await readFile(join(PACKAGE_DIR, 'package.json'), 'utf8')) as { version: string })
  .version;

describe('angos --version (spawned)', () => {
  it('prints the package version and the commit of the checkout', async () => {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: PACKAGE_DIR,
      encoding: 'utf8',
    }).trim();
    const result = await runAngos(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`angos ${VERSION} (commit ${head})\n`);
    // Wherever it appears, as yargs' own --version would.
    expect((await runAngos(['server', '--version'])).stdout).toBe(result.stdout);
  });

  it('prints the commit the build recorded where there is no checkout, else unknown', async () => {
    // A copy of the package outside any git repository, as in a container image.
    const bundle = await mkdtemp(join(tmpdir(), 'angos-bundle-'));
    try {
      await cp(join(PACKAGE_DIR, 'dist'), join(bundle, 'dist'), { recursive: true });
      await cp(join(PACKAGE_DIR, 'package.json'), join(bundle, 'package.json'));
      await symlink(join(PACKAGE_DIR, 'node_modules'), join(bundle, 'node_modules'));
      const recorded = JSON.parse(await readFile(join(bundle, 'dist', 'build-info.json'), 'utf8')) as {
        version: string;
        commit: string;
      };
      expect(recorded.version).toBe(VERSION);
      expect(recorded.commit).toMatch(/^[0-9a-f]{7,}$/);
      const main = join(bundle, 'dist', 'main.js');
      const withRecord = await runAngos(['--version'], { main });
      expect(withRecord.stdout).toBe(`angos ${VERSION} (commit ${recorded.commit})\n`);

      await rm(join(bundle, 'dist', 'build-info.json'));
      const without = await runAngos(['--version'], { main });
      expect(without.code).toBe(0);
      expect(without.stdout).toBe(`angos ${VERSION} (commit unknown)\n`);
    } finally {
      await rm(bundle, { recursive: true, force: true });
    }
  });
});

/** The help lines of one flag: its long form, its short form, and the `<value>` it takes. */
function expectListed(help: string, flag: (typeof GLOBAL_FLAGS)[number]): void {
  expect(help).toMatch(new RegExp(`(^|\\s)--${flag.name}\\s`, 'm'));
  if (flag.alias !== undefined) expect(help).toContain(`-${flag.alias}, --${flag.name}`);
  if (flag.value !== undefined) expect(help).toContain(flag.value);
}

describe('angos --help (spawned)', () => {
  it('lists every command and the global flags, --version included', async () => {
    const result = await runAngos(['--help']);
    expect(result.code).toBe(0);
    for (const command of COMMANDS) expect(result.stdout).toContain(`angos ${command.name}`);
    for (const flag of GLOBAL_FLAGS) expectListed(result.stdout, flag);
  });

  it.each(COMMANDS.filter((command) => command.name !== 'help').map((command) => [command.name, command]))(
    'angos %s --help lists each of its flags',
    async (name, command) => {
      const result = await runAngos([name, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(command.describe);
      for (const flag of [...command.flags, ...GLOBAL_FLAGS.filter((global) => global.name !== 'version')]) {
        expectListed(result.stdout, flag);
      }
    },
  );

  it('knows every flag of the CLI reference for scrub', () => {
    const scrub = COMMANDS.find((command) => command.name === 'scrub');
    expect(scrub?.flags.map(flagSynopsis)).toEqual([
      '-d, --dry-run',
      '-u, --uploads <duration>',
      '-p, --multipart <duration>',
      '-t, --tags',
      '-m, --manifests',
      '-b, --blobs',
      '-r, --retention',
      '-l, --links',
      '--reconcile-blob-index',
      '-M, --media-types',
      '-R, --referrers',
      '--replicate',
      '--replication-orphans',
      '--cache-orphans',
      '--orphan-grants <duration>',
      '-n, --orphan-namespaces',
    ]);
  });
});
