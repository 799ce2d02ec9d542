// Runs after `tsc -b` (the package's build script): records in dist/build-info.json the version and
// the git commit the build came from, for `angos --version` where there is no checkout to ask
// (a container image, a copied dist/). Outside a git checkout the commit is "unknown".
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const here = new URL('..', import.meta.url);
const { version } = JSON.parse(readFileSync(new URL('package.json', here), 'utf8'));
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
    cwd: here,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 5000,
  }).trim();
} catch {
  // No git, or not a checkout: the commit stays unknown.
}
writeFileSync(new URL('dist/build-info.json', here), `${JSON.stringify({ version, commit })}\n`);
