// Bundles the serving-threads benchmark (bench/dist/serving-threads.js and what it imports from the
// workspace and its dependencies) into one ES module for scripts/bench-bundle.sh. Needs `pnpm
// build` first. Usage: node scripts/bench-bundle.mjs <out-file>
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const [outFile] = process.argv.slice(2);
if (!outFile) throw new Error('usage: bench-bundle.mjs <out-file>');
const root = fileURLToPath(new URL('..', import.meta.url));

await build({
  input: join(root, 'bench/dist/serving-threads.js'),
  platform: 'node',
  cwd: root,
  logLevel: 'warn',
  output: { file: outFile, format: 'esm', codeSplitting: false },
});
