import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

/**
 * Servers and clients the tests drive but the workspace cannot install: Debian packages. Every
 * package decides the same way what happens when one is missing: outside CI the tests that need
 * it are skipped with a warning that names the install command; under CI (`CI` set, not
 * `false`/`0`) they run and fail, since CI installs everything (.ci/run).
 */

/** The Debian package that provides each program the tests run. */
const PACKAGE_OF: Readonly<Record<string, string>> = {
  skopeo: 'skopeo',
  podman: 'podman',
  buildah: 'buildah',
  umoci: 'umoci',
  newuidmap: 'uidmap',
  'redis-server': 'redis-server',
  'redis-cli': 'redis-tools',
  radosgw: 'radosgw',
  'radosgw-admin': 'radosgw',
  'ceph-mon': 'ceph-mon',
  'ceph-osd': 'ceph-osd',
  ceph: 'ceph-common',
  monmaptool: 'ceph-common',
  'ceph-authtool': 'ceph-common',
  docker: 'docker.io',
  dockerd: 'docker.io',
  'docker-registry': 'docker-registry',
  // Only its promtool is needed (.ci/run extracts that one binary from the package).
  promtool: 'prometheus',
};

/** The programs a throw-away Ceph RGW needs (see rgw.ts). */
export const RGW_PROGRAMS: readonly string[] = [
  'ceph-mon',
  'ceph-osd',
  'ceph',
  'monmaptool',
  'ceph-authtool',
  'radosgw',
  'radosgw-admin',
];

/** Whether this is a CI run: `CI` set to anything but '', '0' or 'false'. */
export function inCi(): boolean {
  return !['', '0', 'false'].includes((process.env['CI'] ?? '').toLowerCase());
}

/** Whether an executable `name` is on PATH. */
export function onPath(name: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((dir) => {
    try {
      accessSync(join(dir || '.', name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The programs of `programs` that are not on PATH. */
export function missingPrograms(programs: readonly string[]): string[] {
  return programs.filter((name) => !onPath(name));
}

/** The command that installs `programs`, e.g. `apt-get install skopeo redis-tools`. */
export function installCommand(programs: readonly string[]): string {
  const packages = new Set(programs.map((name) => PACKAGE_OF[name] ?? name));
  return `apt-get install ${[...packages].join(' ')}`;
}

/** Why tests cannot run without `missing`, naming the install command. */
export function missingMessage(missing: readonly string[]): string {
  return `${missing.join(', ')} not installed (${installCommand(missing)})`;
}

/**
 * Whether the tests that need `programs` are skipped (for `describe.skipIf`): only when one is
 * missing and this is not CI, with a warning that says what to install. Under CI it returns
 * false; `requirePrograms` in the suite's set-up then fails it with the same message.
 */
export function skipWithout(what: string, ...programs: string[]): boolean {
  const missing = missingPrograms(programs);
  if (missing.length === 0 || inCi()) return false;
  console.warn(`skipping ${what}: ${missingMessage(missing)}; under CI they fail instead`);
  return true;
}

/** Throws, naming the install command, unless every one of `programs` is on PATH. */
export function requirePrograms(...programs: string[]): void {
  const missing = missingPrograms(programs);
  if (missing.length > 0) throw new Error(missingMessage(missing));
}

/**
 * Starts an optional server for a test run: null (with a warning that names the install command)
 * when one of `programs` is missing outside CI; otherwise `start()`, whose failure fails the run.
 */
export async function startOptional<T>(
  what: string,
  programs: readonly string[],
  start: () => Promise<T>,
): Promise<T | null> {
  if (skipWithout(what, ...programs)) return null;
  requirePrograms(...programs);
  return start();
}
