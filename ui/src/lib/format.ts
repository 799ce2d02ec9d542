import type { Platform } from '../api/types.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Bytes in binary units, three significant digits: `1.50 MiB`, `512 B`. */
export function formatSize(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${bytes} B`;
  return `${value.toPrecision(3)} ${UNITS[unit]}`;
}

/** An RFC 3339 time as the browser's locale shows it, or `—` when not recorded. */
export function formatTime(time: string | null | undefined): string {
  if (time === null || time === undefined || time === '') return '—';
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return time;
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** `sha256:0123456789ab…`: enough of a digest to tell it apart in a table. */
export function shortDigest(digest: string, length = 12): string {
  const colon = digest.indexOf(':');
  const hex = colon < 0 ? digest : digest.slice(colon + 1);
  const algorithm = colon < 0 ? '' : digest.slice(0, colon + 1);
  return hex.length <= length ? digest : `${algorithm}${hex.slice(0, length)}…`;
}

export function formatPlatform(platform: Platform | undefined | null): string {
  if (!platform) return '—';
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant ? `${base}/${platform.variant}` : base;
}

/** What a referrer is, from its artifact type (or, failing that, its media type). */
export type ReferrerKind = 'signature' | 'sbom' | 'attestation' | 'artifact';

const KIND_RULES: readonly [RegExp, ReferrerKind][] = [
  [/cosign\.simplesigning|sigstore\.bundle|notary\.signature|\.sig\b|signature/i, 'signature'],
  [/spdx|cyclonedx|syft|sbom/i, 'sbom'],
  [/in-toto|intoto|attestation|provenance|slsa|vex/i, 'attestation'],
];

export function referrerKind(artifactType: string | null | undefined, mediaType = ''): ReferrerKind {
  const text = `${artifactType ?? ''} ${mediaType}`;
  for (const [pattern, kind] of KIND_RULES) if (pattern.test(text)) return kind;
  return 'artifact';
}

export const REFERRER_LABELS: Readonly<Record<ReferrerKind, string>> = {
  signature: 'Signature',
  sbom: 'SBOM',
  attestation: 'Attestation',
  artifact: 'Artifact',
};

/** What a manifest is, for a badge: an index, an image, or an artifact of some type. */
export function manifestKind(mediaType: string, artifactType: string | null | undefined): string {
  if (/index|manifest\.list/.test(mediaType)) return 'index';
  if (artifactType) return REFERRER_LABELS[referrerKind(artifactType)].toLowerCase();
  return 'image';
}

/** The pull commands the manifest page offers, for `host` (the address the browser used). */
export function pullCommands(host: string, namespace: string, reference: string): Record<string, string> {
  const separator = reference.includes(':') ? '@' : ':';
  const image = `${host}/${namespace}${separator}${reference}`;
  return {
    docker: `docker pull ${image}`,
    podman: `podman pull ${image}`,
    crane: `crane pull ${image} ${namespace.split('/').pop() ?? 'image'}.tar`,
  };
}

/** `1 tag`, `2 tags`. */
export function plural(count: number, noun: string): string {
  return `${count.toLocaleString('en')} ${noun}${count === 1 ? '' : 's'}`;
}
