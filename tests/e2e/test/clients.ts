import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { installCommand as aptInstallCommand, repoRoot } from '@angos/test-support';

/**
 * Where the end-to-end tests find the registry clients they drive, and what installs a missing
 * one. The Go clients (oras, cosign, crane, regctl, helm) are pinned in scripts/go-clients.txt and
 * installed by scripts/install-clients.sh into `$ANGOS_GO_BIN/<tool>-<version>/`; those
 * directories come first on the PATH the clients run with, so the pinned version wins over any
 * other on the machine. The other clients come from Debian packages, found on PATH.
 */

interface GoClient {
  tool: string;
  version: string;
  dir: string;
}

const goBinRoot = (): string => process.env['ANGOS_GO_BIN'] ?? join(homedir(), '.cache', 'angos', 'go-bin');

function goClients(): GoClient[] {
  const pins = readFileSync(join(repoRoot(), 'scripts', 'go-clients.txt'), 'utf8');
  return pins
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [tool, version] = line.split(/\s+/) as [string, string];
      return { tool, version, dir: join(goBinRoot(), `${tool}-${version}`) };
    });
}

/** This process's PATH with the pinned Go clients' directories in front. */
export function clientPath(): string {
  return [...goClients().map((c) => c.dir), process.env['PATH'] ?? ''].join(delimiter);
}

/** Whether `name` resolves to an executable on `clientPath()`. */
export function installed(name: string): boolean {
  return clientPath()
    .split(delimiter)
    .some((dir) => {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

/** The command that installs `name`, for the message of a skipped or failing suite. */
export function installCommand(name: string): string {
  const go = goClients().find((c) => c.tool === name);
  if (go) return `scripts/install-clients.sh ${name}`;
  if (name === 'go') return 'install Go 1.24 or later, as .ci/run does (Debian 12 ships 1.19)';
  return aptInstallCommand([name]);
}
