import { expect } from 'vitest';
import { ConfigError, formatIssue, type LoadedConfig, parseConfig } from '../src/index.js';

/** The smallest valid configuration: a server address and a filesystem blob store. */
export const BASE = `
[server]
bind_address = "127.0.0.1"

[blob_store.fs]
root_dir = "/var/lib/angos"
`;

/** Real hashes produced by @node-rs/argon2 (password "secret"). */
export const ARGON2ID_HASH =
  '$argon2id$v=19$m=19456,t=2,p=1$6surVjzDIpEmx03OUZEePg$dJEa9+zw5wGXxCt/ynjsLXtDgufz3DcbA6K5mjGEn2Q';
export const ARGON2I_HASH =
  '$argon2i$v=19$m=19456,t=2,p=1$g2G5uWhZ9g85rYEuisDm6Q$cUoYB+9oxjQlTWaa7RuzwVihotc0Jm3ksI+XGwgKK/4';
export const ARGON2D_HASH =
  '$argon2d$v=19$m=19456,t=2,p=1$4nE99hfpF7b1F8hLszXJmQ$MUk8ol+Saq+uLUFKIFZMetQNZS5qPMQLp4+eQULMzhY';

export const S3_CONNECTION = `
access_key_id = "key"
secret_key = "secret"
endpoint = "http://127.0.0.1:9000"
bucket = "registry"
region = "us-east-1"
`;

/** `[server]` plus an S3 blob store, for configurations whose metadata store is S3. */
export const S3_BASE = `
[server]
bind_address = "127.0.0.1"

[blob_store.s3]
${S3_CONNECTION}
`;

/** Parses `BASE` followed by `extra`. */
export function parseWith(extra: string): LoadedConfig {
  return parseConfig(BASE + extra);
}

/** The issues of a configuration that must be rejected, as `path: reason` lines. */
export function issuesOf(text: string): string[] {
  try {
    parseConfig(text);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map(formatIssue);
    throw error;
  }
  throw new Error('expected the configuration to be rejected');
}

/** Asserts that `text` is rejected with exactly these issues (order-insensitive). */
export function expectIssues(text: string, expected: string[]): void {
  expect([...issuesOf(text)].sort()).toEqual([...expected].sort());
}
