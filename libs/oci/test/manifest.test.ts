import { describe, expect, it } from 'vitest';
import {
  type Descriptor,
  MANIFEST_MEDIA_TYPES,
  MediaType,
  OciError,
  type ParsedManifest,
  parseManifest,
  referencedDescriptors,
} from '../src/index.js';

const hex = (char: string) => char.repeat(64);
const digest = (char: string) => `sha256:${hex(char)}`;

function descriptor(char: string, mediaType: string, extra: Record<string, unknown> = {}): Descriptor {
  return { mediaType, digest: digest(char), size: 100, ...extra } as Descriptor;
}

const encode = (value: unknown) =>
  new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

const ociManifest = () => ({
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  config: descriptor('c', MediaType.OciConfig),
  layers: [descriptor('1', MediaType.OciLayerTarGzip), descriptor('2', MediaType.OciLayerTarZstd)],
});
const ociIndex = () => ({
  schemaVersion: 2,
  mediaType: MediaType.OciIndex,
  manifests: [
    descriptor('a', MediaType.OciManifest, { platform: { architecture: 'amd64', os: 'linux' } }),
    descriptor('b', MediaType.OciManifest, {
      platform: { architecture: 'arm64', os: 'linux', variant: 'v8', 'os.features': ['x'] },
    }),
  ],
});
const dockerManifest = () => ({
  schemaVersion: 2,
  mediaType: MediaType.DockerManifest,
  config: descriptor('c', MediaType.DockerConfig),
  layers: [descriptor('1', MediaType.DockerLayerTarGzip)],
});
const dockerList = () => ({
  schemaVersion: 2,
  mediaType: MediaType.DockerManifestList,
  manifests: [
    descriptor('a', MediaType.DockerManifest, { platform: { architecture: 'amd64', os: 'linux' } }),
  ],
});

const withoutMediaType = (document: Record<string, unknown>) => {
  const { mediaType: _omitted, ...rest } = document;
  return rest;
};

function invalidReason(body: unknown, contentType: string | undefined): string {
  try {
    parseManifest(encode(body), contentType);
  } catch (error) {
    expect(error).toBeInstanceOf(OciError);
    expect((error as OciError).kind).toBe('MANIFEST_INVALID');
    expect((error as OciError).status).toBe(400);
    return String((error as OciError).detail);
  }
  throw new Error('expected MANIFEST_INVALID');
}

const nested = (depth: number, open: string, close: string, inner = '1') =>
  `${open.repeat(depth)}${inner}${close.repeat(depth)}`;

describe('parseManifest: the four manifest types', () => {
  it.each([
    ['OCI manifest', ociManifest(), 'image'],
    ['OCI index', ociIndex(), 'index'],
    ['Docker manifest', dockerManifest(), 'image'],
    ['Docker manifest list', dockerList(), 'index'],
  ] as const)('parses a %s', (_label, document, kind) => {
    const parsed = parseManifest(encode(document), document.mediaType);
    expect(parsed.mediaType).toBe(document.mediaType);
    expect(parsed.kind).toBe(kind);
    if (kind === 'image') {
      const image = document as ReturnType<typeof ociManifest>;
      expect(parsed.config).toEqual(image.config);
      expect(parsed.layers).toEqual(image.layers);
      expect(parsed.manifests).toEqual([]);
    } else {
      const index = document as ReturnType<typeof ociIndex>;
      expect(parsed.config).toBeUndefined();
      expect(parsed.layers).toEqual([]);
      expect(parsed.manifests).toEqual(index.manifests);
    }
  });

  it('lists exactly the four manifest media types', () => {
    expect([...MANIFEST_MEDIA_TYPES].sort()).toEqual(
      [
        MediaType.OciManifest,
        MediaType.OciIndex,
        MediaType.DockerManifest,
        MediaType.DockerManifestList,
      ].sort(),
    );
  });
});

describe('parseManifest: effective media type', () => {
  it('takes the body mediaType when there is no Content-Type', () => {
    expect(parseManifest(encode(ociManifest()), undefined).mediaType).toBe(MediaType.OciManifest);
  });

  it('takes the Content-Type when the body has no mediaType', () => {
    const parsed = parseManifest(encode(withoutMediaType(ociIndex())), MediaType.OciIndex);
    expect(parsed.mediaType).toBe(MediaType.OciIndex);
    expect(parsed.kind).toBe('index');
  });

  it('strips Content-Type parameters and case', () => {
    const header = `${MediaType.DockerManifest.toUpperCase()} ; charset=utf-8`;
    expect(parseManifest(encode(withoutMediaType(dockerManifest())), header).mediaType).toBe(
      MediaType.DockerManifest,
    );
    expect(
      parseManifest(encode(dockerManifest()), `${MediaType.DockerManifest};charset=utf-8`).mediaType,
    ).toBe(MediaType.DockerManifest);
  });

  it('rejects a body mediaType that differs from the Content-Type', () => {
    expect(invalidReason(ociManifest(), MediaType.DockerManifest)).toMatch(/mediaType/);
    expect(invalidReason(ociManifest(), 'application/json')).toMatch(/mediaType/);
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['only parameters', '; charset=utf-8'],
  ])('rejects a Content-Type %s with no body mediaType', (_label, header) => {
    expect(invalidReason(withoutMediaType(ociManifest()), header)).toMatch(/mediaType/);
  });

  it.each([
    MediaType.DockerManifestV1,
    MediaType.DockerManifestV1Signed,
    MediaType.OciConfig,
    'application/json',
    'application/vnd.oci.image.manifest.v2+json',
  ])('rejects the non-manifest media type %s', (mediaType) => {
    expect(invalidReason({ ...ociManifest(), mediaType }, undefined)).toMatch(/mediaType/);
    expect(invalidReason(withoutMediaType(ociManifest()), mediaType)).toMatch(/mediaType/);
  });

  it('rejects a non-string body mediaType', () => {
    expect(invalidReason({ ...ociManifest(), mediaType: 7 }, MediaType.OciManifest)).toMatch(/mediaType/);
  });

  it('judges the structure by the effective type, not by the fields present', () => {
    // An image manifest declared as an index has no manifests array.
    expect(invalidReason(withoutMediaType(ociManifest()), MediaType.OciIndex)).toMatch(/manifests/);
    // An index declared as an image manifest has no config.
    expect(invalidReason(withoutMediaType(ociIndex()), MediaType.OciManifest)).toMatch(/config/);
  });
});

describe('parseManifest: document', () => {
  it.each([
    ['not JSON', '{"schemaVersion": 2,'],
    ['empty body', ''],
    ['a JSON array', '[]'],
    ['JSON null', 'null'],
    ['a JSON string', '"manifest"'],
    ['a JSON number', '2'],
  ])('rejects %s', (_label, text) => {
    expect(invalidReason(text, MediaType.OciManifest)).toMatch(/body/);
  });

  it('rejects invalid UTF-8', () => {
    const bytes = new Uint8Array([...encode('{"schemaVersion":2,"x":"'), 0xff, 0xfe, ...encode('"}')]);
    expect(() => parseManifest(bytes, MediaType.OciManifest)).toThrow(OciError);
  });

  it.each([
    ['missing', undefined],
    ['1', 1],
    ['the string "2"', '2'],
    ['3', 3],
    ['null', null],
  ])('rejects schemaVersion %s', (_label, schemaVersion) => {
    expect(invalidReason({ ...ociManifest(), schemaVersion }, undefined)).toMatch(/schemaVersion/);
  });

  it.each([
    ['as the whole body', nested(10_000, '[', ']')],
    ['as the whole body (objects)', nested(10_000, '{"a":', '}')],
    [
      'as the config',
      `{"schemaVersion":2,"mediaType":"${MediaType.OciManifest}","layers":[],"config":${nested(10_000, '[', ']')}}`,
    ],
    [
      'in an annotation',
      `{"schemaVersion":2,"mediaType":"${MediaType.OciIndex}","manifests":[],"annotations":{"a":${nested(10_000, '[', ']')}}}`,
    ],
    [
      'in a platform',
      `{"schemaVersion":2,"mediaType":"${MediaType.OciIndex}","manifests":[{"mediaType":"${MediaType.OciManifest}","digest":"${digest('a')}","size":1,"platform":{"os":${nested(10_000, '{"a":', '}', '"x"')}}}]}`,
    ],
    ['far deeper than the parser allows', nested(1_000_000, '[', ']')],
  ])('rejects deep nesting %s as MANIFEST_INVALID without crashing', (_label, text) => {
    expect(invalidReason(text, undefined)).not.toBe('');
  });
});

describe('parseManifest: image and index structure', () => {
  it.each([
    ['config missing', (m: Record<string, unknown>) => delete m['config'], /config/],
    ['config null', (m: Record<string, unknown>) => (m['config'] = null), /config/],
    ['config an array', (m: Record<string, unknown>) => (m['config'] = []), /config/],
    ['layers missing', (m: Record<string, unknown>) => delete m['layers'], /layers/],
    ['layers an object', (m: Record<string, unknown>) => (m['layers'] = {}), /layers/],
    ['a layer not an object', (m: Record<string, unknown>) => (m['layers'] = ['sha256:x']), /layers\[0\]/],
  ])('rejects an image manifest with %s', (_label, mutate, reason) => {
    for (const make of [ociManifest, dockerManifest]) {
      const document: Record<string, unknown> = make();
      mutate(document);
      expect(invalidReason(document, undefined)).toMatch(reason);
    }
  });

  it('accepts an image manifest with no layers (artifacts)', () => {
    const parsed = parseManifest(encode({ ...ociManifest(), layers: [] }), undefined);
    expect(parsed.layers).toEqual([]);
  });

  it.each([
    ['manifests missing', (m: Record<string, unknown>) => delete m['manifests']],
    ['manifests null', (m: Record<string, unknown>) => (m['manifests'] = null)],
    ['manifests a string', (m: Record<string, unknown>) => (m['manifests'] = 'x')],
  ])('rejects an index with %s', (_label, mutate) => {
    for (const make of [ociIndex, dockerList]) {
      const document: Record<string, unknown> = make();
      mutate(document);
      expect(invalidReason(document, undefined)).toMatch(/manifests/);
    }
  });

  it('accepts an empty index', () => {
    expect(parseManifest(encode({ ...ociIndex(), manifests: [] }), undefined).manifests).toEqual([]);
  });
});

describe('parseManifest: descriptors', () => {
  const withLayer = (layer: unknown) => ({
    ...ociManifest(),
    layers: [descriptor('1', MediaType.OciLayerTar), layer],
  });
  const base = descriptor('2', MediaType.OciLayerTar);

  it.each([
    ['mediaType missing', { digest: base.digest, size: 1 }, /layers\[1\]\.mediaType/],
    ['mediaType empty', { ...base, mediaType: '' }, /layers\[1\]\.mediaType/],
    ['mediaType a number', { ...base, mediaType: 1 }, /layers\[1\]\.mediaType/],
    ['digest missing', { mediaType: base.mediaType, size: 1 }, /layers\[1\]\.digest/],
    ['digest uppercase', { ...base, digest: `sha256:${hex('A')}` }, /layers\[1\]\.digest/],
    ['digest unknown algorithm', { ...base, digest: `sha384:${hex('a')}` }, /layers\[1\]\.digest/],
    ['digest too short', { ...base, digest: 'sha256:abc' }, /layers\[1\]\.digest/],
    ['digest a number', { ...base, digest: 5 }, /layers\[1\]\.digest/],
    ['size missing', { mediaType: base.mediaType, digest: base.digest }, /layers\[1\]\.size/],
    ['size negative', { ...base, size: -1 }, /layers\[1\]\.size/],
    ['size fractional', { ...base, size: 1.5 }, /layers\[1\]\.size/],
    ['size a string', { ...base, size: '100' }, /layers\[1\]\.size/],
    ['size beyond safe integers', { ...base, size: 2 ** 53 }, /layers\[1\]\.size/],
    ['size null', { ...base, size: null }, /layers\[1\]\.size/],
    ['annotations not an object', { ...base, annotations: ['a'] }, /annotations/],
    ['an annotation not a string', { ...base, annotations: { a: 1 } }, /annotations/],
    ['urls not an array', { ...base, urls: 'http://x' }, /urls/],
    ['a url not a string', { ...base, urls: [1] }, /urls/],
    ['artifactType not a string', { ...base, artifactType: {} }, /artifactType/],
    ['platform not an object', { ...base, platform: 'linux/amd64' }, /platform/],
    ['platform with a nested object', { ...base, platform: { os: { name: 'linux' } } }, /platform/],
  ])('rejects a layer with %s', (_label, layer, reason) => {
    expect(invalidReason(withLayer(layer), undefined)).toMatch(reason);
  });

  it('rejects a bad config descriptor and a bad child manifest', () => {
    expect(invalidReason({ ...ociManifest(), config: { ...base, size: -5 } }, undefined)).toMatch(
      /config\.size/,
    );
    expect(
      invalidReason({ ...ociIndex(), manifests: [{ ...base, digest: 'sha256:zz' }] }, undefined),
    ).toMatch(/manifests\[0\]\.digest/);
  });

  it('accepts size 0 and the largest safe size', () => {
    const parsed = parseManifest(
      encode(withLayer({ ...base, size: Number.MAX_SAFE_INTEGER, digest: `sha512:${'e'.repeat(128)}` })),
      undefined,
    );
    expect(parsed.layers[1]?.size).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseManifest(encode(withLayer({ ...base, size: 0 })), undefined).layers[1]?.size).toBe(0);
  });

  it('keeps the known optional fields and drops the rest', () => {
    const layer = {
      ...base,
      annotations: { 'org.opencontainers.image.title': 'x.tar' },
      urls: ['https://example.com/x'],
      artifactType: 'application/x',
      data: 'e30=',
      unknownField: { deep: true },
    };
    expect(parseManifest(encode(withLayer(layer)), undefined).layers[1]).toEqual({
      mediaType: base.mediaType,
      digest: base.digest,
      size: base.size,
      annotations: { 'org.opencontainers.image.title': 'x.tar' },
      urls: ['https://example.com/x'],
      artifactType: 'application/x',
    });
  });

  it('keeps a "__proto__" annotation as an ordinary key', () => {
    const text = JSON.stringify(ociManifest()).replace(/}$/, ',"annotations":{"__proto__":"x","b":"y"}}');
    const annotations = parseManifest(encode(text), undefined).annotations!;
    expect(Object.getPrototypeOf(annotations)).toBe(Object.prototype);
    expect(Object.keys(annotations)).toEqual(['__proto__', 'b']);
    expect(Object.getOwnPropertyDescriptor(annotations, '__proto__')?.value).toBe('x');
  });
});

describe('parseManifest: subject, artifactType, annotations', () => {
  const subject = descriptor('5', MediaType.OciManifest);

  it('parses a subject and keeps it out of referencedDescriptors', () => {
    const parsed = parseManifest(encode({ ...ociManifest(), subject }), undefined);
    expect(parsed.subject).toEqual(subject);
    const referenced = referencedDescriptors(parsed).map((d) => d.digest);
    expect(referenced).toEqual([digest('c'), digest('1'), digest('2')]);
    expect(referenced).not.toContain(subject.digest);
  });

  it('rejects an invalid subject', () => {
    expect(invalidReason({ ...ociManifest(), subject: { ...subject, digest: 'nope' } }, undefined)).toMatch(
      /subject\.digest/,
    );
    expect(invalidReason({ ...ociIndex(), subject: 'sha256:x' }, undefined)).toMatch(/subject/);
  });

  it('lists child manifests of an index as referenced', () => {
    const parsed = parseManifest(encode({ ...ociIndex(), subject }), undefined);
    expect(referencedDescriptors(parsed).map((d) => d.digest)).toEqual([digest('a'), digest('b')]);
  });

  it.each<[string, Record<string, unknown>, string | undefined]>([
    [
      'explicit on an image manifest',
      { ...ociManifest(), artifactType: 'application/vnd.example.sbom' },
      'application/vnd.example.sbom',
    ],
    ['missing on an image manifest: the config media type', ociManifest(), MediaType.OciConfig],
    [
      'empty on an image manifest: the config media type',
      { ...ociManifest(), artifactType: '' },
      MediaType.OciConfig,
    ],
    ['missing on a Docker manifest: the config media type', dockerManifest(), MediaType.DockerConfig],
    [
      'explicit on an index',
      { ...ociIndex(), artifactType: 'application/vnd.example.bundle' },
      'application/vnd.example.bundle',
    ],
    ['missing on an index: omitted', ociIndex(), undefined],
    ['empty on an index: omitted', { ...ociIndex(), artifactType: '' }, undefined],
  ])('artifactType %s', (_label, document, expected) => {
    const parsed: ParsedManifest = parseManifest(encode(document), undefined);
    expect(parsed.artifactType).toBe(expected);
    if (expected === undefined) expect('artifactType' in parsed).toBe(false);
  });

  it('rejects a non-string artifactType', () => {
    expect(invalidReason({ ...ociManifest(), artifactType: 1 }, undefined)).toMatch(/artifactType/);
  });

  it('parses top-level annotations and rejects non-string values', () => {
    const annotations = { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' };
    expect(parseManifest(encode({ ...ociIndex(), annotations }), undefined).annotations).toEqual(annotations);
    expect(parseManifest(encode(ociIndex()), undefined).annotations).toBeUndefined();
    expect(invalidReason({ ...ociIndex(), annotations: { a: null } }, undefined)).toMatch(/annotations/);
    expect(invalidReason({ ...ociIndex(), annotations: 'x' }, undefined)).toMatch(/annotations/);
  });
});
