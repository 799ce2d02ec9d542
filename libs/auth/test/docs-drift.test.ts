import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPLICATE_ACTION, ROUTE_ACTIONS, UI_ASSET_ACTION } from '@angos/oci';
import { describe, expect, it } from 'vitest';
import { REQUEST_SCHEMA } from '../src/index.js';

/**
 * Drift test (STYLE.md #7): the README's tables are what rule writers read, so every action a
 * request can have and every `request.*` variable is in them, and they list nothing else.
 */

const README = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md'), 'utf8');

/** The first cells of the table whose header row is `header`, backquotes removed. */
function firstColumn(header: string): string[] {
  const lines = README.split('\n');
  const start = lines.indexOf(header);
  if (start === -1) throw new Error(`no table with the header ${header}`);
  const rows = lines.slice(start + 2);
  const end = rows.findIndex((line) => !line.startsWith('|'));
  return rows
    .slice(0, end === -1 ? rows.length : end)
    .map((line) => (line.split('|')[1] ?? '').trim().replace(/`/g, ''));
}

describe('libs/auth/README.md', () => {
  it('lists every action, once, and no other', () => {
    // `mount-blob` is the upload POST that names a blob to mount (actionFor derives it).
    const actions = new Set([
      ...Object.values(ROUTE_ACTIONS).flatMap((row) => Object.values(row)),
      'mount-blob',
      REPLICATE_ACTION,
      UI_ASSET_ACTION,
    ]);
    const documented = firstColumn('| action | request |');
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual([...actions].sort());
  });

  it('lists every request variable rules can read, and no other', () => {
    const documented = firstColumn('| variable | type | present |').filter((name) =>
      name.startsWith('request.'),
    );
    expect(documented.sort()).toEqual(
      Object.keys(REQUEST_SCHEMA)
        .map((key) => `request.${key}`)
        .sort(),
    );
  });
});
