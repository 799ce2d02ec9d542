import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface BuildInfo {
  readonly version: string;
  /** Abbreviated git commit, or `unknown`. */
  readonly commit: string;
}

const UNKNOWN = 'unknown';
/** This package's directory (dist/ is one level below it). */
const PACKAGE_DIR = new URL('..', import.meta.url);
/** Where this package sits in the Angos repository: how a checkout of it is recognised. */
const PATH_IN_REPOSITORY = 'services/cli/';

function readJson(relative: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(new URL(relative, PACKAGE_DIR), 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function git(...args: string[]): string | undefined {
  try {
    return execFileSync('git', args, {
      cwd: fileURLToPath(PACKAGE_DIR),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    }).trim();
  } catch {
    return undefined;
  }
}

/**
 * The checkout's current commit when this package runs from a checkout of the Angos repository
 * (a build cache may have restored an older dist/build-info.json), else undefined. A copy that
 * merely sits inside some other repository (a vendored bundle) is not mistaken for one.
 */
function checkoutCommit(): string | undefined {
  if (git('rev-parse', '--show-prefix') !== PATH_IN_REPOSITORY) return undefined;
  return git('rev-parse', '--short', 'HEAD');
}

function stringField(record: Record<string, unknown> | undefined, key: string): string | undefined {
  const value = record?.[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The version (package.json) and commit (the checkout, else what the build recorded). */
export function buildInfo(): BuildInfo {
  const recorded = readJson('dist/build-info.json');
  return {
    version: stringField(readJson('package.json'), 'version') ?? stringField(recorded, 'version') ?? UNKNOWN,
    commit: checkoutCommit() ?? stringField(recorded, 'commit') ?? UNKNOWN,
  };
}

/** `angos 0.1.0 (commit abc1234)`: what `angos --version` prints. */
export function versionLine(info: BuildInfo = buildInfo()): string {
  return `angos ${info.version} (commit ${info.commit})`;
}
