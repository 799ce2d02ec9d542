/** One challenge of a `WWW-Authenticate` header: the scheme (lowercased) and its parameters. */
export interface Challenge {
  readonly scheme: string;
  /** Parameter names lowercased; quoted values unescaped. */
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
const TOKEN68 = /[A-Za-z0-9._~+/-]+=*/y;

/**
 * Parses `WWW-Authenticate` (RFC 9110 §11.6.1) into its challenges, e.g.
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:x:pull"`.
 * Several headers, or several challenges in one, give several entries. What does not parse ends
 * the list: a malformed header yields what came before it, never an exception.
 */
export function parseChallenges(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  if (typeof header !== 'string') return header.flatMap((one) => parseChallenges(one));
  return parseOne(header);
}

function parseOne(header: string): Challenge[] {
  const challenges: { scheme: string; params: Record<string, string> }[] = [];
  let pos = 0;
  const skip = (pattern: RegExp) => {
    while (pos < header.length && pattern.test(header[pos]!)) pos++;
  };
  const match = (pattern: RegExp): string | undefined => {
    pattern.lastIndex = pos;
    const found = pattern.exec(header);
    if (found === null) return undefined;
    pos += found[0].length;
    return found[0];
  };
  while (pos < header.length) {
    skip(/[\s,]/);
    if (pos >= header.length) break;
    const name = match(TOKEN);
    if (name === undefined) break;
    const afterName = pos;
    skip(/\s/);
    if (header[pos] === '=' && challenges.length > 0) {
      pos++;
      skip(/\s/);
      const value = header[pos] === '"' ? quoted() : match(TOKEN);
      if (value === undefined) break;
      challenges.at(-1)!.params[name.toLowerCase()] = value;
      continue;
    }
    pos = afterName;
    challenges.push({ scheme: name.toLowerCase(), params: {} });
    skip(/\s/);
    // A token68 credential (`Negotiate abc==`) instead of parameters: kept as no parameters.
    const save = pos;
    const blob = match(TOKEN68);
    if (blob !== undefined) {
      skip(/\s/);
      if (pos < header.length && header[pos] !== ',') pos = save;
    }
  }
  return challenges;

  function quoted(): string | undefined {
    let value = '';
    for (pos++; pos < header.length; pos++) {
      const char = header[pos]!;
      if (char === '"') {
        pos++;
        return value;
      }
      if (char === '\\' && pos + 1 < header.length) pos++;
      value += header[pos];
    }
    return undefined;
  }
}
