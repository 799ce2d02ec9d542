/**
 * A location inside the configuration document. A plain string segment is a key printed bare when
 * TOML allows it; a `QuotedKey` is always printed quoted (repository namespaces, as the reference
 * writes them: `repository."team"`); a number is an array index.
 */
export type PathSegment = string | number | QuotedKey;
export type KeyPath = readonly PathSegment[];

export interface QuotedKey {
  readonly quoted: string;
}

export function quoted(key: string): QuotedKey {
  return { quoted: key };
}

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

function quoteKey(key: string): string {
  // TOML basic strings share JSON's escapes for `"` and `\`.
  return JSON.stringify(key);
}

export function formatKeyPath(path: KeyPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') {
      out += `[${segment}]`;
      continue;
    }
    const text =
      typeof segment === 'string'
        ? BARE_KEY.test(segment)
          ? segment
          : quoteKey(segment)
        : quoteKey(segment.quoted);
    out += out === '' ? text : `.${text}`;
  }
  return out;
}

/** `[metadata_store.s3.lock_strategy.s3]` — how a table header for `path` is written in TOML. */
export function tableHeader(path: KeyPath): string {
  return `[${formatKeyPath(path)}]`;
}
