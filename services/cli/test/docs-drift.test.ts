import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMANDS, type FlagSpec, GLOBAL_FLAGS } from '../src/commands/flags.js';

/**
 * Drift test (STYLE.md #7): docs/cli.md documents exactly the commands and flags of the CLI's
 * tables (src/commands/flags.ts, from which the parser and `--help` are built), with their short
 * forms and value placeholders, and marks exactly the flags this build does not run yet.
 */

const here = dirname(fileURLToPath(import.meta.url));
const REFERENCE = join(here, '..', '..', '..', 'docs', 'cli.md');

const FLAG_HEADER = 'Flag|Short|Value|Default|Description';

interface DocumentedFlag {
  /** The last heading above the row. */
  readonly heading: string;
  readonly name: string;
  readonly alias: string | undefined;
  readonly value: string | undefined;
  /** The Default cell as written (backticks kept). */
  readonly default: string;
  readonly description: string;
}

const cellsOf = (line: string): string[] =>
  line
    .trim()
    .replace(/^\||\|$/g, '')
    .split('|')
    .map((cell) => cell.trim());

/** `` `--dry-run` `` → `--dry-run`; undefined for an empty cell. */
function codeSpan(cell: string | undefined, row: string): string | undefined {
  if (cell === undefined || cell === '') return undefined;
  const match = /^`([^`]+)`$/.exec(cell);
  if (!match) throw new Error(`expected one code span in "${cell}" (row: ${row})`);
  return match[1];
}

/** The rows of every flag table of the reference, outside code blocks, with their heading. */
function documentedFlags(text: string): DocumentedFlag[] {
  const flags: DocumentedFlag[] = [];
  let heading = '';
  let fenced = false;
  let inFlagTable = false;
  let previous = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    if (!fenced && line.startsWith('#')) heading = line;
    if (fenced || !line.startsWith('|')) inFlagTable = false;
    else if (/^\|(\s*:?-+:?\s*\|)+$/.test(line.trim()))
      inFlagTable = cellsOf(previous).join('|') === FLAG_HEADER;
    else if (inFlagTable) {
      const [flag, short, value, defaultCell, description] = cellsOf(line);
      const name = codeSpan(flag, line);
      if (name === undefined || !name.startsWith('--')) throw new Error(`flag row without a --flag: ${line}`);
      flags.push({
        heading,
        name: name.slice(2),
        alias: codeSpan(short, line)?.replace(/^-/, ''),
        value: codeSpan(value, line),
        default: defaultCell ?? '',
        description: description ?? '',
      });
    }
    previous = line;
  }
  return flags;
}

/** What the reference must say about a flag of the tables. */
const expected = (flag: FlagSpec) => ({ name: flag.name, alias: flag.alias, value: flag.value });
const stated = (flag: DocumentedFlag) => ({ name: flag.name, alias: flag.alias, value: flag.value });
const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);

const COMMAND_HEADING = /^###\s+`angos ([a-z-]+)`\s*$/;

describe('CLI flags ↔ docs/cli.md', () => {
  const reference = readFileSync(REFERENCE, 'utf8');
  const flags = documentedFlags(reference);
  const underHeading = (test: (heading: string) => boolean) => flags.filter((flag) => test(flag.heading));
  const commandOf = (heading: string) => COMMAND_HEADING.exec(heading)?.[1];

  it('reads the flag tables (guards against a silently empty comparison)', () => {
    expect(flags.length).toBeGreaterThan(20);
    expect(flags.map((flag) => flag.name)).toContain('dry-run');
  });

  it('documents the global flags', () => {
    const documented = underHeading((heading) => heading === '## Global flags');
    expect(documented.map(stated).sort(byName)).toEqual(GLOBAL_FLAGS.map(expected).sort(byName));
  });

  it('documents every command, and no other', () => {
    const headings = reference
      .split('\n')
      .map(commandOf)
      .filter((name) => name !== undefined);
    expect(headings.sort()).toEqual(COMMANDS.map((command) => command.name).sort());
  });

  it.each(COMMANDS.map((command) => [command.name, command] as const))(
    'documents the flags of angos %s',
    (name, command) => {
      const documented = underHeading((heading) => commandOf(heading) === name);
      expect(documented.map(stated).sort(byName)).toEqual(command.flags.map(expected).sort(byName));
    },
  );

  it('puts every flag table under the global flags or a command', () => {
    const stray = flags.filter((flag) => flag.heading !== '## Global flags' && !commandOf(flag.heading));
    expect(stray.map((flag) => `--${flag.name} under "${flag.heading}"`)).toEqual([]);
  });

  it('states the defaults and marks exactly the flags this build does not run yet', () => {
    const specs = [
      ...GLOBAL_FLAGS.map((flag) => ({ command: undefined, flag })),
      ...COMMANDS.flatMap((command) => command.flags.map((flag) => ({ command: command.name, flag }))),
    ];
    const wrong = specs.flatMap(({ command, flag }) => {
      const row = flags.find(
        (documented) =>
          documented.name === flag.name &&
          (command === undefined
            ? documented.heading === '## Global flags'
            : commandOf(documented.heading) === command),
      );
      if (row === undefined) return [];
      const where = `${command ?? 'global'} --${flag.name}`;
      const problems: string[] = [];
      if (/not supported yet/i.test(row.description) !== !flag.supported) {
        problems.push(`${where}: supported is ${flag.supported}`);
      }
      if (flag.default !== undefined && row.default !== `\`${String(flag.default)}\``) {
        problems.push(`${where}: default is ${String(flag.default)}, documented ${row.default}`);
      }
      return problems;
    });
    expect(wrong).toEqual([]);
  });
});
