import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The monorepo root: the nearest ancestor of this module that holds pnpm-workspace.yaml. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('pnpm-workspace.yaml not found above @angos/test-support');
    dir = parent;
  }
}

/** The built CLI entry point: ANGOS_CLI when set, else services/cli/dist/main.js. */
export function cliEntry(): string {
  return process.env['ANGOS_CLI'] ?? join(repoRoot(), 'services', 'cli', 'dist', 'main.js');
}

/**
 * The shipped `angos` command (services/cli/bin/angos): the built CLI run by Node with the runtime
 * flags it is measured and shipped with, for tests that measure the process (memory, soak) and the
 * benchmarks. ANGOS_LAUNCHER names another (the benchmark bundle's, scripts/bench-bundle.sh).
 */
export function angosLauncher(): string {
  return process.env['ANGOS_LAUNCHER'] ?? join(repoRoot(), 'services', 'cli', 'bin', 'angos');
}

/**
 * A `node --import` preload that appends every module the process loads (resolved ES import URLs
 * and require specifiers) to the file named by $ANGOS_LOAD_TRACE: for tests that check what a
 * configuration makes a process load.
 */
export function moduleTracePreload(): string {
  return pathToFileURL(join(repoRoot(), 'libs', 'test-support', 'fixtures', 'trace-loads.mjs')).href;
}
