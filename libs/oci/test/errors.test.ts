import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  EXTENSION_ERROR_CODES,
  errorBody,
  INTERNAL_ERROR_CODE,
  isOciError,
  OCI_ERRORS,
  OciError,
  type OciErrorKind,
  SPEC_ERROR_CODES,
} from '../src/index.js';

// Written out by hand so that adding a kind to the union without a row (or the
// reverse) fails here; the type check below fails if this list misses a kind.
const ALL_KINDS = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
  'TAG_INVALID',
  'BLOB_TOO_LARGE',
  'MANIFEST_TOO_LARGE',
  'RANGE_INVALID',
  'RANGE_NOT_SATISFIABLE',
  'TAG_IMMUTABLE',
  'REPLICATION_SUPERSEDED',
  'METHOD_NOT_ALLOWED',
  'ROUTE_UNKNOWN',
  'REQUEST_INVALID',
  'JOB_UNKNOWN',
  'UPSTREAM_UNAVAILABLE',
  'UNAVAILABLE',
  'INTERNAL',
] as const satisfies readonly OciErrorKind[];
type Unlisted = Exclude<OciErrorKind, (typeof ALL_KINDS)[number]>;
const everyKindListed: [Unlisted] extends [never] ? true : false = true;

describe('OCI_ERRORS drift', () => {
  it('has exactly one row per kind', () => {
    expect(everyKindListed).toBe(true);
    expect(Object.keys(OCI_ERRORS).sort()).toEqual([...ALL_KINDS].sort());
  });

  it.each(ALL_KINDS)('%s has a 4xx/5xx status, a wire code and a message', (kind) => {
    const row = OCI_ERRORS[kind];
    expect(row.status).toBeGreaterThanOrEqual(400);
    expect(row.status).toBeLessThan(600);
    expect(row.code).toMatch(/^[A-Z_]+$/);
    expect(row.message.trim()).not.toBe('');
  });

  it('answers every 4xx with a code from the distribution-spec table', () => {
    for (const kind of ALL_KINDS) {
      const row = OCI_ERRORS[kind];
      if (row.status < 500 && !EXTENSION_ERROR_CODES.includes(row.code)) {
        expect(SPEC_ERROR_CODES, kind).toContain(row.code);
      }
    }
  });

  it('only the fallback, backend unavailability and the gateway’s upstream failure are 5xx', () => {
    const serverErrors = ALL_KINDS.filter((kind) => OCI_ERRORS[kind].status >= 500);
    expect(serverErrors).toEqual(['UPSTREAM_UNAVAILABLE', 'UNAVAILABLE', 'INTERNAL']);
    expect(OCI_ERRORS.UNAVAILABLE.status).toBe(503);
    expect(OCI_ERRORS.INTERNAL.code).toBe(INTERNAL_ERROR_CODE);
  });

  it('maps each spec code to its own kind, with the spec message', () => {
    expect(SPEC_ERROR_CODES).toHaveLength(14);
    for (const code of SPEC_ERROR_CODES) {
      expect(OCI_ERRORS[code as OciErrorKind]?.code).toBe(code);
    }
    expect(OCI_ERRORS.MANIFEST_BLOB_UNKNOWN.message).toBe(
      'manifest references a manifest or blob unknown to registry',
    );
    expect(OCI_ERRORS.UNAUTHORIZED.message).toBe('authentication required');
  });

  it.each([
    ['BLOB_UNKNOWN', 404],
    ['MANIFEST_BLOB_UNKNOWN', 404],
    ['UNAUTHORIZED', 401],
    ['DENIED', 403],
    ['TOOMANYREQUESTS', 429],
    ['BLOB_TOO_LARGE', 413],
    ['MANIFEST_TOO_LARGE', 413],
    ['RANGE_INVALID', 416],
    ['RANGE_NOT_SATISFIABLE', 416],
    ['TAG_IMMUTABLE', 409],
    ['METHOD_NOT_ALLOWED', 405],
    ['ROUTE_UNKNOWN', 404],
  ] as const)('%s is HTTP %i', (kind, status) => {
    expect(OCI_ERRORS[kind].status).toBe(status);
  });

  it('pins the wire code of the kinds the spec has no code for', () => {
    expect(OCI_ERRORS.BLOB_TOO_LARGE.code).toBe('BLOB_UPLOAD_INVALID');
    expect(OCI_ERRORS.MANIFEST_TOO_LARGE.code).toBe('MANIFEST_INVALID');
    expect(OCI_ERRORS.RANGE_INVALID.code).toBe('BLOB_UPLOAD_INVALID');
  });

  it('documents every row with a comment', () => {
    const source = readFileSync(new URL('../src/errors.ts', import.meta.url), 'utf8').split('\n');
    for (const kind of ALL_KINDS) {
      const line = source.findIndex((text) => text.trimStart().startsWith(`${kind}: {`));
      expect(line, kind).toBeGreaterThan(0);
      // The row is preceded by one or more `//` comment lines.
      expect(source[line - 1]?.trim().startsWith('//'), kind).toBe(true);
    }
  });
});

describe('OciError', () => {
  it('takes code, status and message from the table', () => {
    const error = new OciError('BLOB_TOO_LARGE', { limit: 10 });
    expect(error).toBeInstanceOf(Error);
    expect(isOciError(error)).toBe(true);
    expect(isOciError(new Error('x'))).toBe(false);
    expect(error.kind).toBe('BLOB_TOO_LARGE');
    expect(error.code).toBe('BLOB_UPLOAD_INVALID');
    expect(error.status).toBe(413);
    expect(error.message).toBe(OCI_ERRORS.BLOB_TOO_LARGE.message);
    expect(error.detail).toEqual({ limit: 10 });
  });

  it('accepts a message override', () => {
    const error = new OciError('DENIED', undefined, 'no push to a cache namespace');
    expect(error.message).toBe('no push to a cache namespace');
    expect(error.detail).toBeUndefined();
  });
});

describe('errorBody', () => {
  it('writes the spec shape, omitting an absent detail', () => {
    const body = JSON.parse(
      errorBody([new OciError('MANIFEST_UNKNOWN'), new OciError('NAME_INVALID', { name: 'A' })]),
    );
    expect(body).toEqual({
      errors: [
        { code: 'MANIFEST_UNKNOWN', message: 'manifest unknown to registry' },
        { code: 'NAME_INVALID', message: 'invalid repository name', detail: { name: 'A' } },
      ],
    });
    expect(Object.keys(body.errors[0])).toEqual(['code', 'message']);
  });

  it('writes an empty list', () => {
    expect(JSON.parse(errorBody([]))).toEqual({ errors: [] });
  });

  it('keeps falsy details', () => {
    expect(JSON.parse(errorBody([new OciError('SIZE_INVALID', 0)])).errors[0].detail).toBe(0);
  });

  it('drops a detail that cannot be serialized instead of throwing', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    const body = JSON.parse(errorBody([new OciError('INTERNAL', cyclic), new OciError('DENIED', 10n)]));
    expect(body.errors).toEqual([
      { code: 'INTERNAL_ERROR', message: 'internal server error' },
      { code: 'DENIED', message: 'requested access to the resource is denied' },
    ]);
  });
});
