/**
 * Syntactic check of an Argon2 password hash in PHC string format, e.g.
 * `$argon2id$v=19$m=19456,t=2,p=1$<base64 salt>$<base64 hash>` (also `argon2i`, `argon2d`).
 * Catches truncated or hand-edited hashes at load time instead of at the first login; whether
 * the password matches is decided later, by the verifier. Bounds are those of the Argon2 RFC 9106.
 */

const ALGORITHMS = new Set(['argon2id', 'argon2i', 'argon2d']);
const FORMAT = 'expected a PHC string such as $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>';
const B64 = /^[A-Za-z0-9+/]+$/;
const DECIMAL = /^(0|[1-9]\d*)$/;
const SUPPORTED_VERSIONS = new Set([16, 19]);

/** Returns the problem with `hash`, or undefined when it is a well-formed Argon2 PHC string. */
export function argon2HashProblem(hash: string): string | undefined {
  const fields = hash.split('$');
  if (fields[0] !== '' || !ALGORITHMS.has(fields[1] ?? '')) return FORMAT;
  let rest = fields.slice(2);
  if (rest[0]?.startsWith('v=')) {
    const version = rest[0].slice(2);
    if (!DECIMAL.test(version) || !SUPPORTED_VERSIONS.has(Number(version))) {
      return `unsupported version v=${version} (expected 16 or 19)`;
    }
    rest = rest.slice(1);
  }
  if (rest.length !== 3) return FORMAT;
  const [paramText = '', salt = '', digest = ''] = rest;
  const params = parseParams(paramText);
  if (typeof params === 'string') return params;
  const { m, t, p } = params;
  if (t < 1) return 't (iterations) must be at least 1';
  if (p < 1 || p > 0xffffff) return 'p (parallelism) must be between 1 and 16777215';
  if (m < 8 * p || m > 0xffffffff) return 'm (memory KiB) must be at least 8 × p and at most 4294967295';
  const saltBytes = base64Length(salt);
  if (saltBytes === undefined) return 'salt is not valid unpadded base64';
  if (saltBytes < 8) return 'salt must be at least 8 bytes';
  const digestBytes = base64Length(digest);
  if (digestBytes === undefined) return 'hash is not valid unpadded base64';
  if (digestBytes < 4) return 'hash must be at least 4 bytes';
  return undefined;
}

function parseParams(text: string): { m: number; t: number; p: number } | string {
  const values = new Map<string, number>();
  for (const part of text.split(',')) {
    const [name = '', value, extra] = part.split('=');
    if (value === undefined || extra !== undefined) return `malformed parameter "${part}"`;
    if (name === 'keyid' || name === 'data') continue; // optional PHC parameters, base64
    if (name !== 'm' && name !== 't' && name !== 'p') return `unknown parameter "${name}"`;
    if (values.has(name)) return `duplicate parameter "${name}"`;
    if (!DECIMAL.test(value) || value.length > 10) return `parameter ${name} must be a decimal integer`;
    values.set(name, Number(value));
  }
  const m = values.get('m');
  const t = values.get('t');
  const p = values.get('p');
  if (m === undefined || t === undefined || p === undefined) return 'parameters m, t and p are required';
  return { m, t, p };
}

/** Decoded length of unpadded standard base64, or undefined when it is not base64. */
function base64Length(text: string): number | undefined {
  if (!B64.test(text) || text.length % 4 === 1) return undefined;
  return Math.floor((text.length * 3) / 4);
}
