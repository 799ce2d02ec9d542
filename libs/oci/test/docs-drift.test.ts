import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { OCI_ERRORS } from '../src/errors.js';

/**
 * Drift test (STYLE.md #7): every answer of the error table, a status with its wire code, has a
 * row in docs/troubleshooting.md saying what it means and what to do, and the page lists no
 * answer the registry cannot give.
 */

const here = dirname(fileURLToPath(import.meta.url));
const TROUBLESHOOTING = join(here, '..', '..', '..', 'docs', 'troubleshooting.md');
const HEADER = '| Status | Code | Meaning | What to do |';

/** `404 BLOB_UNKNOWN` for each row of the table under HEADER. */
function documentedAnswers(text: string): string[] {
  const lines = text.split('\n');
  const start = lines.indexOf(HEADER);
  if (start === -1) throw new Error(`no table with the header ${HEADER}`);
  const rows = lines.slice(start + 2);
  const end = rows.findIndex((line) => !line.startsWith('|'));
  return rows.slice(0, end === -1 ? rows.length : end).map((line) => {
    const [status, code] = line
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((cell) => cell.trim());
    return `${status} ${code?.replace(/`/g, '')}`;
  });
}

describe('OCI errors ↔ docs/troubleshooting.md', () => {
  it('documents every status and code the registry answers, once, and no other', () => {
    const documented = documentedAnswers(readFileSync(TROUBLESHOOTING, 'utf8'));
    const answered = new Set(Object.values(OCI_ERRORS).map((error) => `${error.status} ${error.code}`));
    expect(new Set(documented).size, 'a status and code documented twice').toBe(documented.length);
    expect([...documented].sort()).toEqual([...answered].sort());
  });
});
