import { readFile } from 'node:fs/promises';
import { parse, TomlError } from 'smol-toml';
import { ConfigError, type ConfigIssue, type ConfigWarning } from './errors.js';
import { readConfig } from './root.js';
import { ReadContext } from './schema.js';
import type { Config } from './types.js';

export interface LoadedConfig {
  config: Config;
  warnings: ConfigWarning[];
}

/**
 * Parses and validates configuration text. Throws `ConfigError` listing every problem: a TOML
 * syntax error (with line and column), or every schema violation with its key path.
 */
export function parseConfig(text: string, source?: string): LoadedConfig {
  let document: Record<string, unknown>;
  try {
    // Integers that do not fit a double exactly arrive as BigInt and are range-checked, never rounded.
    document = parse(text, { integersAsBigInt: 'asNeeded' });
  } catch (error) {
    if (error instanceof TomlError) throw new ConfigError([syntaxIssue(error, source)], source);
    throw error;
  }
  const ctx = new ReadContext();
  const config = readConfig(document, ctx);
  if (!config || ctx.issues.length > 0) throw new ConfigError(ctx.issues, source);
  return { config, warnings: ctx.warnings };
}

function syntaxIssue(error: TomlError, source: string | undefined): ConfigIssue {
  const reason = (error.message.split('\n')[0] ?? '').replace(/^Invalid TOML document:\s*/, '');
  return {
    path: source ?? 'config',
    message: `syntax error at line ${error.line}, column ${error.column}: ${reason}`,
    line: error.line,
    column: error.column,
  };
}

/** Reads and parses a configuration file. A missing or unreadable file is a `ConfigError` naming it. */
export async function loadConfig(path: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError([{ path, message: readFailure(error) }], path);
  }
  return parseConfig(text, path);
}

export function readFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'configuration file not found';
  if (code === 'EACCES') return 'configuration file not readable (permission denied)';
  if (code === 'EISDIR') return 'is a directory, not a configuration file';
  return `cannot read configuration file: ${(error as Error).message}`;
}
