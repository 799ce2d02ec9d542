import { tryParseDigest } from './digest.js';
import { OciError } from './errors.js';
import { essenceOfContentType, isIndexMediaType, isManifestMediaType } from './media-types.js';

/** An image-spec content descriptor, keeping only the fields Angos reads. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: unknown;
  urls?: string[];
}

export interface ParsedManifest {
  /** Effective media type: the body's `mediaType`, else the Content-Type essence. */
  mediaType: string;
  kind: 'image' | 'index';
  /** Image manifests only. */
  config?: Descriptor;
  /** Image manifests; [] for an index. */
  layers: Descriptor[];
  /** Indexes; [] for an image manifest. */
  manifests: Descriptor[];
  subject?: Descriptor;
  /**
   * `artifactType` of the manifest, or for an image manifest without one, its
   * config media type (distribution-spec referrers rules). Undefined for an index
   * without one.
   */
  artifactType?: string;
  annotations?: Record<string, string>;
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(reason: string): OciError {
  return new OciError('MANIFEST_INVALID', reason);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses and validates a pushed manifest or index. Every failure is
 * OciError('MANIFEST_INVALID') with a detail naming the offending field.
 *
 * Validation only walks the known, flat structure of a manifest: it never
 * recurses over client JSON, and nested values it keeps (platform) are checked
 * to be flat, so hostile nesting cannot exhaust the stack here or later.
 */
export function parseManifest(body: Uint8Array, contentType: string | undefined): ParsedManifest {
  const document = parseJsonObject(body);

  if (document['schemaVersion'] !== 2) throw invalid('schemaVersion: must be 2');

  const mediaType = effectiveMediaType(document, contentType);
  const kind = isIndexMediaType(mediaType) ? 'index' : 'image';

  const parsed: ParsedManifest = { mediaType, kind, layers: [], manifests: [] };
  if (kind === 'image') {
    if (!('config' in document)) throw invalid('config: required in an image manifest');
    parsed.config = parseDescriptor(document['config'], 'config');
    parsed.layers = parseDescriptorList(document['layers'], 'layers');
  } else {
    parsed.manifests = parseDescriptorList(document['manifests'], 'manifests');
  }

  if (document['subject'] !== undefined) parsed.subject = parseDescriptor(document['subject'], 'subject');

  const artifactType = optionalString(document['artifactType'], 'artifactType');
  // The referrers API reports an empty artifactType as missing, and an image
  // manifest without one by its config media type.
  if (artifactType !== undefined && artifactType !== '') parsed.artifactType = artifactType;
  else if (parsed.config !== undefined) parsed.artifactType = parsed.config.mediaType;

  const annotations = optionalAnnotations(document['annotations'], 'annotations');
  if (annotations !== undefined) parsed.annotations = annotations;

  return parsed;
}

/** config, layers and child manifests: what a manifest needs to be complete (not its subject). */
export function referencedDescriptors(m: ParsedManifest): Descriptor[] {
  return [...(m.config === undefined ? [] : [m.config]), ...m.layers, ...m.manifests];
}

function parseJsonObject(body: Uint8Array): JsonObject {
  let document: unknown;
  try {
    document = JSON.parse(utf8.decode(body));
  } catch {
    // Invalid UTF-8, invalid JSON, or nesting deep enough to exhaust the parser.
    throw invalid('body: not valid UTF-8 JSON');
  }
  if (!isObject(document)) throw invalid('body: must be a JSON object');
  return document;
}

/**
 * The body's `mediaType` if present, else the Content-Type header without its
 * parameters; when both are present they must agree. The result must be one of
 * the four manifest media types.
 */
function effectiveMediaType(document: JsonObject, contentType: string | undefined): string {
  const declared = optionalString(document['mediaType'], 'mediaType');
  const header = essenceOfContentType(contentType);
  if (declared !== undefined && header !== undefined && declared !== header) {
    throw invalid('mediaType: does not match the Content-Type header');
  }
  const mediaType = declared ?? header;
  if (mediaType === undefined) throw invalid('mediaType: missing from both body and Content-Type');
  if (!isManifestMediaType(mediaType)) throw invalid('mediaType: not a supported manifest media type');
  return mediaType;
}

/** Validates one descriptor and copies only its known fields. `where` names it in errors. */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw invalid(`${where}: must be a descriptor object`);

  const mediaType = value['mediaType'];
  if (typeof mediaType !== 'string' || mediaType === '') {
    throw invalid(`${where}.mediaType: must be a non-empty string`);
  }
  const digest = value['digest'];
  if (typeof digest !== 'string' || tryParseDigest(digest) === undefined) {
    throw invalid(`${where}.digest: must be a sha256 or sha512 digest in lowercase hex`);
  }
  const size = value['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(`${where}.size: must be a non-negative integer`);
  }

  const descriptor: Descriptor = { mediaType, digest, size };
  const artifactType = optionalString(value['artifactType'], `${where}.artifactType`);
  if (artifactType !== undefined) descriptor.artifactType = artifactType;
  const annotations = optionalAnnotations(value['annotations'], `${where}.annotations`);
  if (annotations !== undefined) descriptor.annotations = annotations;
  const urls = optionalStringArray(value['urls'], `${where}.urls`);
  if (urls !== undefined) descriptor.urls = urls;
  if (value['platform'] !== undefined) descriptor.platform = parsePlatform(value['platform'], where);
  return descriptor;
}

function parseDescriptorList(value: unknown, where: string): Descriptor[] {
  if (!Array.isArray(value)) throw invalid(`${where}: must be an array`);
  return value.map((item, index) => parseDescriptor(item, `${where}[${index}]`));
}

function optionalString(value: unknown, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`${where}: must be a string`);
  return value;
}

function optionalStringArray(value: unknown, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw invalid(`${where}: must be an array of strings`);
  }
  return [...value];
}

function optionalAnnotations(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw invalid(`${where}: must be an object of strings`);
  const entries = Object.entries(value);
  if (!entries.every(([, text]) => typeof text === 'string')) {
    throw invalid(`${where}: must be an object of strings`);
  }
  // fromEntries defines own properties, so a "__proto__" key stays an ordinary annotation.
  return Object.fromEntries(entries) as Record<string, string>;
}

/**
 * image-spec platform: architecture, os, os.version, variant are strings and
 * os.features, features arrays of strings. Kept as given, but checked flat.
 */
function parsePlatform(value: unknown, where: string): unknown {
  const reason = `${where}.platform: must be an object of strings and string arrays`;
  if (!isObject(value)) throw invalid(reason);
  for (const field of Object.values(value)) {
    const flat =
      typeof field === 'string' ||
      (Array.isArray(field) && field.every((item: unknown) => typeof item === 'string'));
    if (!flat) throw invalid(reason);
  }
  return value;
}
