import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configShape, loadConfig, type Shape, unsupportedFeatures } from '../src/index.js';

/**
 * Drift tests (STYLE.md #7): the schema and the configuration reference describe the same
 * options — every option in the reference's tables exists in the schema, and the schema has no
 * option the reference does not document (except the project's own `[services]`, documented in
 * this package's README). And every example configuration in deploy/ parses.
 */

const here = dirname(fileURLToPath(import.meta.url));
const SPEC_DIR = '/work/shared/spec';
const README = join(here, '..', 'README.md');
const DEPLOY_DIR = join(here, '..', '..', '..', 'deploy');

function specFile(prefix: string): string | undefined {
  if (!existsSync(SPEC_DIR)) return undefined;
  const name = readdirSync(SPEC_DIR).find((file) => file.startsWith(prefix));
  return name === undefined ? undefined : join(SPEC_DIR, name);
}

const REFERENCE = specFile('000_');
const STORAGE_GUIDE = specFile('004_');

/** A section heading of the reference: `Server (server)`, `Upstream (repository."<namespace>".upstream)`. */
const HEADING = /^[A-Z][A-Za-z0-9 -]*\(([a-z_]+(?:\.(?:[a-z0-9_]+|<name>|"<namespace>"))*)\)$/;
/** A whole-line TOML table header in an example: `[metadata_store.s3.lock_strategy.s3]`. */
const TOML_HEADER = /^\[([a-z_]+(?:\.[a-z0-9_]+)*)\]$/;
const OPTION_TABLE_HEADER = '| Option | Type | Default | Description |';
/** `bind_address | string | required | …` — the text extraction drops the leading pipe. */
const OPTION_ROW = /^([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*) \| /;

/**
 * Option tables of the reference, keyed by section path. A table belongs to the last section
 * heading, unless a TOML header line of an example sits between them (the lock tables are
 * introduced by `[metadata_store.s3.lock_strategy.s3]` / `.redis]` examples, not by a heading).
 */
function referenceTables(text: string): { tables: Map<string, string[]>; sameAs: Map<string, string> } {
  const tables = new Map<string, string[]>();
  const sameAs = new Map<string, string>();
  let heading: string | undefined;
  let header: string | undefined;
  let section: string | undefined;
  const lines = text.split('\n').map((line) => line.trim());
  lines.forEach((line, index) => {
    const headingMatch = HEADING.exec(line);
    if (headingMatch) {
      heading = headingMatch[1]!;
      header = undefined;
      section = undefined;
      // `Same as global.access_policy.` / `Same connection options as blob_store.s3, plus:`
      const alias = /^Same (?:connection options )?as ([a-z_]+(?:\.[a-z0-9_]+)*)/.exec(
        lines[index + 1] ?? '',
      );
      if (alias) sameAs.set(heading, alias[1]!);
      return;
    }
    const tomlMatch = TOML_HEADER.exec(line);
    if (tomlMatch && heading !== undefined) {
      header = tomlMatch[1]!;
      return;
    }
    if (line === OPTION_TABLE_HEADER) {
      section = header ?? heading;
      return;
    }
    if (section === undefined || line.startsWith('|---')) return;
    const row = OPTION_ROW.exec(line);
    if (!row) {
      section = undefined;
      return;
    }
    tables.set(section, [...(tables.get(section) ?? []), row[1]!]);
  });
  return { tables, sameAs };
}

/** Every option the reference documents, as a full key path (`server.tls.client_ca_bundle`). */
function referenceOptions(text: string): Set<string> {
  const { tables, sameAs } = referenceTables(text);
  const options = new Set<string>();
  const add = (section: string, rows: readonly string[]) => {
    for (const row of rows) options.add(`${section}.${row}`);
  };
  for (const [section, rows] of tables) add(section, rows);
  for (const [section, target] of sameAs) {
    let rows = tables.get(target) ?? [];
    // "Same connection options as blob_store.s3": the connection and retry options; the multipart
    // options size blob uploads, which the metadata store never does.
    if (section === 'metadata_store.s3') rows = rows.filter((row) => !row.startsWith('multipart_'));
    add(section, rows);
  }
  // The Redis lock table is printed once, under the S3 example; the compatibility matrix
  // ("redis | Yes | Yes") and [metadata_store.fs.lock_strategy.redis] in the prose apply it to fs.
  add('metadata_store.fs.lock_strategy.redis', tables.get('metadata_store.s3.lock_strategy.redis') ?? []);
  return options;
}

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
) {
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
      schemaPaths(shape.item.shape, prefix, out);
      break;
    case 'union':
      for (const variant of shape.variants) schemaPaths(variant, prefix, out);
      break;
  }
  return out;
}

const isProjectSpecific = (path: string) => path === 'services' || path.startsWith('services.');

/** Deprecated spellings the schema still accepts, each with the documentation that names it. */
const LEGACY_EVIDENCE: Readonly<Record<string, { doc: 'reference' | 'storage'; text: string }>> = {
  'global.access_policy.default_allow': { doc: 'reference', text: 'default_allow' },
  'repository."<namespace>".access_policy.default_allow': { doc: 'reference', text: 'default_allow' },
  'metadata_store.fs.redis': { doc: 'storage', text: '[metadata_store.fs.redis]' },
  'metadata_store.s3.redis': { doc: 'storage', text: '[metadata_store.s3.redis]' },
};

describe.skipIf(REFERENCE === undefined)('schema ↔ configuration reference', () => {
  const reference = referenceOptions(readFileSync(REFERENCE ?? '/dev/null', 'utf8'));
  const schema = schemaPaths(configShape);
  const known = new Set([...schema.leaves, ...schema.containers]);

  it('extracts the reference tables (guards against a silently empty comparison)', () => {
    expect(reference.size).toBeGreaterThan(130);
    for (const option of [
      'server.bind_address',
      'server.tls.client_ca_bundle',
      'global.job_queue.pending_refresh_interval_secs',
      'global.access_policy.default',
      'metadata_store.s3.capabilities.delete_if_match',
      'metadata_store.s3.lock_strategy.s3.max_hold_secs',
      'metadata_store.s3.lock_strategy.redis.ttl',
      'metadata_store.s3.access_key_id',
      'auth.oidc.<name>.jwks_uri',
      'auth.webhook.<name>.basic_auth.username',
      'repository."<namespace>".downstream.namespace_filter',
      'repository."<namespace>".retention_policy.rules',
      'observability.tracing.sampling_rate',
      'ui.name',
    ]) {
      expect(reference, option).toContain(option);
    }
  });

  it('has every documented option in the schema', () => {
    const missing = [...reference].filter((option) => !known.has(option));
    expect(missing).toEqual([]);
  });

  it('has no option the reference does not document', () => {
    const undocumented = [...schema.leaves].filter(
      (leaf) => !reference.has(leaf) && !isProjectSpecific(leaf),
    );
    expect(undocumented).toEqual([]);
    // Every table of the schema holds documented options (no empty, undocumented sections).
    const emptySections = [...schema.containers].filter(
      (container) =>
        !isProjectSpecific(container) &&
        !reference.has(container) &&
        ![...reference].some((option) => option.startsWith(`${container}.`)),
    );
    expect(emptySections).toEqual([]);
  });

  it('accepts only legacy spellings that the documents name', () => {
    expect([...schema.legacy].sort()).toEqual(Object.keys(LEGACY_EVIDENCE).sort());
    const texts = {
      reference: readFileSync(REFERENCE ?? '/dev/null', 'utf8'),
      storage: STORAGE_GUIDE ? readFileSync(STORAGE_GUIDE, 'utf8') : '',
    };
    for (const [path, evidence] of Object.entries(LEGACY_EVIDENCE)) {
      if (evidence.doc === 'storage' && !STORAGE_GUIDE) continue;
      expect(texts[evidence.doc], path).toContain(evidence.text);
    }
  });
});

describe('[services] ↔ README', () => {
  it('documents exactly the options of the schema', () => {
    const readme = readFileSync(README, 'utf8');
    const section = readme.slice(readme.indexOf('## Services (services)'));
    const body = section.slice(0, section.indexOf('\n## ', 1));
    const documented = [...body.matchAll(/^\| `([a-z_]+)` \|/gm)].map((row) => `services.${row[1]}`).sort();
    const inSchema = [...schemaPaths(configShape).leaves].filter(isProjectSpecific).sort();
    expect(documented).toEqual(inSchema);
    expect(inSchema).toEqual(['services.internal_token', 'services.registry_api_url']);
  });
});

describe('deploy/*.toml', () => {
  const files = existsSync(DEPLOY_DIR)
    ? readdirSync(DEPLOY_DIR).filter((file) => file.endsWith('.toml'))
    : [];

  it('has the example configurations', () => {
    expect(files.sort()).toEqual(expect.arrayContaining(['config.toml', 'split.toml']));
  });

  it.each(files)('%s parses without warnings and uses only built features', async (file) => {
    const { config, warnings } = await loadConfig(join(DEPLOY_DIR, file));
    expect(warnings).toEqual([]);
    expect(unsupportedFeatures(config)).toEqual([]);
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
