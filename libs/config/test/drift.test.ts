import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { type Config, configShape, loadConfig, parseConfig, parseSize, type Shape } from '../src/index.js';
import { ARGON2ID_HASH, S3_CONNECTION } from './helpers.js';

/**
 * Drift tests (STYLE.md #7): the schema and the configuration reference in docs/configuration.md
 * describe the same options. Every option of the schema has a row in the reference, every row
 * names an option of the schema, the defaults the rows state are the defaults the loader fills
 * in, and the features this build refuses are the ones the reference marks. Every example
 * configuration in deploy/ parses. Nothing outside the repository is read.
 */

const here = dirname(fileURLToPath(import.meta.url));
const REPOSITORY = join(here, '..', '..', '..');
const REFERENCE = join(REPOSITORY, 'docs', 'configuration.md');
const DEPLOY_DIR = join(REPOSITORY, 'deploy');

// ---------------------------------------------------------------------------------------------
// The reference, read as data

/** A table of the reference: its header cells and its rows' cells (backticks kept). */
interface MarkdownTable {
  /** The last heading above the table. */
  readonly heading: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

const cellsOf = (line: string): string[] =>
  line
    .trim()
    .replace(/^\||\|$/g, '')
    .split('|')
    .map((cell) => cell.trim());

/** Every pipe table of a Markdown document, outside fenced code blocks. */
function markdownTables(text: string): MarkdownTable[] {
  const tables: { heading: string; header: string[]; rows: string[][] }[] = [];
  let current: { heading: string; header: string[]; rows: string[][] } | undefined;
  let fenced = false;
  let heading = '';
  let previous = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    if (!fenced && line.startsWith('#')) heading = line;
    const isRow = !fenced && line.startsWith('|');
    if (!isRow) current = undefined;
    else if (/^\|(\s*:?-+:?\s*\|)+$/.test(line.trim())) {
      current = { heading, header: cellsOf(previous), rows: [] };
      tables.push(current);
    } else current?.rows.push(cellsOf(line));
    previous = line;
  }
  return tables;
}

/** `` `server.port` `` → `server.port`; undefined when the cell is not one code span. */
const codeSpan = (cell: string | undefined): string | undefined => /^`([^`]+)`$/.exec(cell ?? '')?.[1];

/** The tables a heading names: `` ### `[server.tls]` `` → `server.tls`; `[[…]]` too. */
function tablesNamedIn(heading: string): string[] {
  return [...heading.matchAll(/`\[\[?([^`]+?)\]\]?`/g)].map((match) => match[1]!);
}

function tablesWithHeader(text: string, header: readonly string[]): MarkdownTable[] {
  return markdownTables(text).filter((table) => table.header.join('|') === header.join('|'));
}

const OPTION_HEADER = ['Option', 'Type', 'Default', 'Description'];

interface DocumentedOption {
  readonly path: string;
  /** The last heading above the row. */
  readonly heading: string;
  readonly type: string;
  readonly default: string;
  readonly description: string;
}

/** The option rows of the reference: first cell the full key path in backticks. */
function documentedOptions(text: string): DocumentedOption[] {
  return tablesWithHeader(text, OPTION_HEADER).flatMap((table) =>
    table.rows.map((cells) => {
      const path = codeSpan(cells[0]);
      if (path === undefined)
        throw new Error(`option row without a key path in backticks: ${cells.join(' | ')}`);
      return {
        path,
        heading: table.heading,
        type: cells[1] ?? '',
        default: cells[2] ?? '',
        description: cells[3] ?? '',
      };
    }),
  );
}

/** First column of the tables with `header`, as code spans. */
function firstColumn(text: string, header: readonly string[]): string[] {
  return tablesWithHeader(text, header).flatMap((table) =>
    table.rows.map((cells) => codeSpan(cells[0]) ?? `(not a code span: ${cells[0]})`),
  );
}

// ---------------------------------------------------------------------------------------------
// The schema, read as data

interface SchemaPaths {
  leaves: Set<string>;
  containers: Set<string>;
  legacy: Set<string>;
}

/** Walks the schema: scalars are leaves; tables, named tables and arrays of tables are containers. */
function schemaPaths(
  shape: Shape,
  prefix = '',
  out: SchemaPaths = { leaves: new Set(), containers: new Set(), legacy: new Set() },
): SchemaPaths {
  const join = (key: string) => (prefix === '' ? key : `${prefix}.${key}`);
  switch (shape.kind) {
    case 'scalar':
      out.leaves.add(prefix);
      break;
    case 'table':
      if (prefix !== '') out.containers.add(prefix);
      for (const [key, field] of Object.entries(shape.fields)) schemaPaths(field.shape, join(key), out);
      for (const key of shape.legacy) out.legacy.add(join(key));
      break;
    case 'record':
      out.containers.add(prefix);
      schemaPaths(shape.value.shape, join(shape.placeholder), out);
      break;
    case 'array':
      out.containers.add(prefix);
      schemaPaths(shape.item.shape, prefix, out);
      break;
    case 'union':
      for (const variant of shape.variants) schemaPaths(variant, prefix, out);
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Defaults: documented values against what the loader fills in

/**
 * Documents that turn on every table with options of their own, so each documented default can
 * be looked up in a loaded configuration; a path is looked up in the first document that has it.
 * Only required keys are written; everything else comes from the loader's defaults.
 */
const SAMPLES: readonly string[] = [
  // First the smallest documents: the metadata store follows the blob store, locks stay in memory.
  `
[server]
bind_address = "127.0.0.1"
[blob_store.fs]
root_dir = "/var/lib/angos"
`,
  `
[server]
bind_address = "127.0.0.1"
[blob_store.s3]
${S3_CONNECTION}
`,
  `
[server]
bind_address = "127.0.0.1"
[server.tls]
server_certificate_bundle = "server.crt"
server_private_key = "server.key"
[blob_store.fs]
root_dir = "/var/lib/angos"
[metadata_store.fs]
[metadata_store.fs.lock_strategy.redis]
url = "redis://127.0.0.1:6379"
ttl = 10
[global.job_queue]
[cache.redis]
url = "redis://127.0.0.1:6379"
[auth.identity.alice]
username = "alice"
password = "${ARGON2ID_HASH}"
[auth.oidc.github-actions]
provider = "github"
[auth.webhook.check]
url = "https://authz.example.com/check"
timeout_ms = 500
basic_auth = { username = "registry", password = "secret" }
[repository."team"]
upstream = [{ url = "https://registry-1.docker.io" }]
downstream = [{ name = "mirror", url = "https://mirror.example.com" }]
[repository."team".access_policy]
[repository."team".retention_policy]
[event_webhook.audit]
url = "https://audit.example.com/hook"
policy = "async"
events = ["manifest.push"]
[observability.tracing]
endpoint = "http://127.0.0.1:4318"
sampling_rate = 0.5
`,
  `
[server]
bind_address = "127.0.0.1"
[blob_store.s3]
${S3_CONNECTION}
[metadata_store.s3]
${S3_CONNECTION}
[metadata_store.s3.lock_strategy.s3]
[metadata_store.s3.capabilities]
put_if_none_match = true
put_if_match = true
`,
  `
[server]
bind_address = "127.0.0.1"
[blob_store.s3]
${S3_CONNECTION}
[metadata_store.s3]
${S3_CONNECTION}
[metadata_store.s3.lock_strategy.redis]
url = "redis://127.0.0.1:6379"
ttl = 10
`,
];

/** `repository."team".upstream` → `['repository', 'team', 'upstream']`; placeholders stay. */
function segmentsOf(path: string): string[] {
  return [...path.matchAll(/"([^"]*)"|([^.]+)/g)].map((match) => match[1] ?? match[2]!);
}

const MISSING = Symbol('missing');

/** The value at a documented path: a placeholder takes the first entry, an array its first item. */
function valueAt(config: unknown, path: string): unknown {
  let value: unknown = config;
  for (const segment of segmentsOf(path)) {
    if (Array.isArray(value)) value = value[0];
    if (typeof value !== 'object' || value === null) return MISSING;
    const record = value as Record<string, unknown>;
    const key = segment.startsWith('<') ? Object.keys(record)[0] : segment;
    if (key === undefined || !Object.hasOwn(record, key)) return MISSING;
    value = record[key];
  }
  return value;
}

/** A Default cell that is one TOML value in backticks (`8000`, `"5MiB"`, `[]`), as a value. */
function literalDefault(cell: string): { value: unknown } | undefined {
  const literal = codeSpan(cell);
  if (literal === undefined) return undefined;
  try {
    return { value: parseToml(`value = ${literal}`)['value'] };
  } catch {
    return undefined;
  }
}

/** Sizes are documented as the TOML string users write (`"5MiB"`) and loaded as bytes. */
function asLoaded(documented: unknown, loaded: unknown): unknown {
  if (typeof documented === 'string' && typeof loaded === 'number') {
    const size = parseSize(documented);
    return 'value' in size ? size.value : documented;
  }
  return documented;
}

// ---------------------------------------------------------------------------------------------

describe('schema ↔ docs/configuration.md', () => {
  const reference = readFileSync(REFERENCE, 'utf8');
  const options = documentedOptions(reference);
  const documented = options.map((option) => option.path);
  const schema = schemaPaths(configShape);

  it('reads the option tables (guards against a silently empty comparison)', () => {
    expect(documented.length).toBeGreaterThan(130);
    expect(documented).toContain('server.bind_address');
    expect(documented).toContain('metadata_store.s3.lock_strategy.s3.max_hold_secs');
    expect(documented).toContain('services.internal_token');
  });

  it('documents every option once', () => {
    const repeated = documented.filter((path, index) => documented.indexOf(path) !== index);
    expect(repeated).toEqual([]);
  });

  it('documents every option of the schema', () => {
    const undocumented = [...schema.leaves].filter((leaf) => !documented.includes(leaf));
    expect(undocumented).toEqual([]);
  });

  it('documents no option the schema does not have', () => {
    const unknown = documented.filter((path) => !schema.leaves.has(path));
    expect(unknown).toEqual([]);
  });

  it('puts every option under the heading of its table', () => {
    const misplaced = options
      .filter((option) => !tablesNamedIn(option.heading).some((name) => option.path.startsWith(`${name}.`)))
      .map((option) => `${option.path} under "${option.heading}"`);
    expect(misplaced).toEqual([]);
  });

  it('gives every option a type, a default and a description', () => {
    const incomplete = options.filter((o) => o.type === '' || o.default === '' || o.description === '');
    expect(incomplete).toEqual([]);
  });

  it('states the defaults the loader fills in', () => {
    const loaded: Config[] = SAMPLES.map((sample) => {
      const { config } = parseConfig(sample);
      return config;
    });
    let checked = 0;
    const wrong: string[] = [];
    for (const option of options) {
      const literal = literalDefault(option.default);
      if (literal === undefined) continue;
      const config = loaded.find((candidate) => valueAt(candidate, option.path) !== MISSING);
      if (config === undefined) {
        wrong.push(`${option.path}: no sample configuration has this option's table`);
        continue;
      }
      const value = valueAt(config, option.path);
      checked += 1;
      try {
        expect(value).toEqual(asLoaded(literal.value, value));
      } catch {
        wrong.push(`${option.path}: documented ${option.default}, loaded ${JSON.stringify(value)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(60);
  });

  it('lists the deprecated spellings the schema accepts', () => {
    const listed = firstColumn(reference, ['Deprecated option', 'Use instead']);
    expect(listed.sort()).toEqual([...schema.legacy].sort());
  });
});

describe('deploy/*.toml', () => {
  const files = existsSync(DEPLOY_DIR)
    ? readdirSync(DEPLOY_DIR).filter((file) => file.endsWith('.toml'))
    : [];

  it('has the example configurations', () => {
    expect(files.sort()).toEqual(expect.arrayContaining(['config.toml', 'split.toml']));
  });

  it.each(files)('%s parses without warnings', async (file) => {
    const { warnings } = await loadConfig(join(DEPLOY_DIR, file));
    expect(warnings).toEqual([]);
  });

  it('config.toml is the local example', async () => {
    const { config } = await loadConfig(join(DEPLOY_DIR, 'config.toml'));
    expect(config.server).toMatchObject({ bind_address: '127.0.0.1', port: 8000 });
    expect(config.blob_store.fs?.root_dir).toBe('./.angos-data');
    expect(config.global.access_policy.default).toBe('allow');
  });

  it('split.toml names the registry-api route and token', async () => {
    const { config } = await loadConfig(join(DEPLOY_DIR, 'split.toml'));
    expect(config.services.registry_api_url).toBe('http://127.0.0.1:8001');
    expect(config.services.internal_token).toBeTruthy();
    expect(config.blob_store.fs?.root_dir).toBe('./.angos-data');
  });
});
