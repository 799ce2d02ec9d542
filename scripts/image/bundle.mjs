// Bundles the `angos` CLI for the container image (scripts/build-image.sh) with rolldown, the
// bundler vite builds the web UI with: the built workspace (dist/ of every package) and its
// production dependencies into ES modules in dist/, the entry main.js and the chunks it imports.
// What the code imports lazily (`await import`: the S3 and Redis clients, the tracing SDK, the CLI's
// argument parser in a serving thread) stays in chunks of its own, loaded only where it is used:
// every serving thread compiles what it loads, and one file of everything cost each thread ~25 MiB
// more (bench/results/serving-threads.md). The packages loaded by path at run time stay packages
// beside it:
//   @node-rs/argon2 and its linux-<arch>-gnu binding   the Argon2 worker threads require it by the
//                                                      path the main thread resolved (libs/auth)
//   @marcbachmann/cel-js                               loaded lazily with require (libs/auth)
// Writes, under the directory given as the first argument (the image's /usr/local/lib/angos):
//   package.json, dist/build-info.json                 (what `angos --version` reads)
//   dist/main.js, dist/<name>-<hash>.js                the entry and its chunks, side by side: the
//                                                      code finds main.js, ../ui/ and ../package.json
//                                                      from its own module's URL
//   ui/                                                (the web UI that registry-api serves)
//   node_modules/<the packages above>
// Needs `pnpm build` first. Deterministic: no timestamps, no absolute paths of this machine.
import { cp, mkdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const [outDir, revision] = process.argv.slice(2);
if (!outDir) throw new Error('usage: bundle.mjs <out-dir> [revision]');
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'services/cli');
const EXTERNAL = ['@node-rs/argon2', '@marcbachmann/cel-js'];
const UI_MODULE = '\0angos-ui';

/**
 * Packages a serving thread loads only when its configuration uses them, each behind an
 * `await import`: a static import of one from the serving thread's modules would load it into
 * every thread of every server.
 */
const LOADED_WHEN_CONFIGURED = [
  /\/node_modules\/@aws-sdk\//,
  /\/node_modules\/@smithy\//,
  /\/node_modules\/ioredis\//,
  /\/node_modules\/@opentelemetry\/(?!api\/)/,
  /\/node_modules\/yargs\//,
];
const cliPackage = JSON.parse(await readFile(join(cli, 'package.json'), 'utf8'));

await mkdir(join(outDir, 'dist'), { recursive: true });
const bundled = await build({
  input: join(cli, 'dist/main.js'),
  platform: 'node',
  external: EXTERNAL,
  // Module ids relative to the repository, so that no path of the build machine ends up in the bundle.
  cwd: root,
  logLevel: 'warn',
  plugins: [
    {
      // @angos/ui names its dist/ next to itself; in the image the app lies in ui/ beside dist/.
      name: 'angos-ui-directory',
      resolveId: (id) => (id === '@angos/ui' ? UI_MODULE : null),
      load: (id) =>
        id === UI_MODULE
          ? "import { fileURLToPath } from 'node:url';\nexport const uiAssetsDirectory = fileURLToPath(new URL('../ui/', import.meta.url));\n"
          : null,
    },
  ],
  output: { dir: join(outDir, 'dist'), format: 'esm' },
});
assertServingThreadLean(bundled.output);

// What `angos --version` reads (services/cli/src/version.ts): package.json one level above dist/.
await writeFile(
  join(outDir, 'package.json'),
  `${JSON.stringify({ name: cliPackage.name, version: cliPackage.version, private: true, type: 'module' }, null, 2)}\n`,
);
const recorded = JSON.parse(await readFile(join(cli, 'dist/build-info.json'), 'utf8'));
await writeFile(
  join(outDir, 'dist/build-info.json'),
  `${JSON.stringify({ version: cliPackage.version, commit: revision || recorded.commit })}\n`,
);
await cp(join(root, 'ui/dist'), join(outDir, 'ui'), { recursive: true });

/** Where `name` is installed for the package in `dir`: pnpm's real directory, not its link. */
const packageDir = (dir, name) => realpath(join(dir, 'node_modules', name));
const auth = join(root, 'libs/auth');
const argon2 = await packageDir(auth, '@node-rs/argon2');
// The binding for this machine (the image's architecture is the build machine's).
const binding = `@node-rs/argon2-linux-${process.arch}-gnu`;
const copies = [
  ['@node-rs/argon2', argon2],
  // pnpm links a package's dependencies beside it: <store>/node_modules/@node-rs/<binding>.
  [binding, await realpath(join(argon2, '../..', binding))],
  ['@marcbachmann/cel-js', await packageDir(auth, '@marcbachmann/cel-js')],
];
for (const [name, from] of copies) {
  await cp(from, join(outDir, 'node_modules', name), { recursive: true, dereference: true });
}

/** Fails the bundle when what a serving thread loads at start reaches one of LOADED_WHEN_CONFIGURED. */
function assertServingThreadLean(output) {
  const chunks = new Map(
    output.filter((item) => item.type === 'chunk').map((chunk) => [chunk.fileName, chunk]),
  );
  const thread = [...chunks.values()].find((chunk) =>
    chunk.facadeModuleId?.endsWith('/services/cli/dist/serving-thread.js'),
  );
  if (thread === undefined)
    throw new Error('bundle.mjs: no chunk for serving-thread.js (is it still imported lazily?)');
  const loaded = new Set();
  const visit = (fileName) => {
    if (loaded.has(fileName) || !chunks.has(fileName)) return;
    loaded.add(fileName);
    for (const imported of chunks.get(fileName).imports) visit(imported);
  };
  visit(thread.fileName);
  const offending = [...loaded]
    .flatMap((fileName) => chunks.get(fileName).moduleIds)
    .filter((id) => LOADED_WHEN_CONFIGURED.some((pattern) => pattern.test(id)));
  if (offending.length > 0) {
    throw new Error(
      `bundle.mjs: a serving thread would load at start:\n  ${offending.slice(0, 10).join('\n  ')}`,
    );
  }
}
