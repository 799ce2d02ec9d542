import { describe, expect, it } from 'vitest';
import {
  formatPlatform,
  formatSize,
  manifestKind,
  plural,
  pullCommands,
  referrerKind,
  shortDigest,
} from '../src/lib/format.js';

describe('formatSize', () => {
  it('uses binary units with three significant digits', () => {
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(1023)).toBe('1023 B');
    expect(formatSize(1536)).toBe('1.50 KiB');
    expect(formatSize(5 * 1024 * 1024)).toBe('5.00 MiB');
    expect(formatSize(null)).toBe('—');
  });
});

describe('referrerKind', () => {
  it('labels the artifact types cosign, syft, notation and in-toto push', () => {
    expect(referrerKind('application/vnd.dev.cosign.artifact.sig.v1+json')).toBe('signature');
    expect(referrerKind('application/vnd.dev.sigstore.bundle.v0.3+json')).toBe('signature');
    expect(referrerKind('application/vnd.cncf.notary.signature')).toBe('signature');
    expect(referrerKind('application/spdx+json')).toBe('sbom');
    expect(referrerKind('application/vnd.cyclonedx+json')).toBe('sbom');
    expect(referrerKind('application/vnd.in-toto+json')).toBe('attestation');
    expect(referrerKind('application/vnd.example.thing')).toBe('artifact');
    expect(referrerKind(null, 'application/vnd.dev.cosign.simplesigning.v1+json')).toBe('signature');
  });
});

describe('manifestKind', () => {
  it('tells indexes, images and artifacts apart', () => {
    expect(manifestKind('application/vnd.oci.image.index.v1+json', null)).toBe('index');
    expect(manifestKind('application/vnd.docker.distribution.manifest.list.v2+json', null)).toBe('index');
    expect(manifestKind('application/vnd.oci.image.manifest.v1+json', null)).toBe('image');
    expect(manifestKind('application/vnd.oci.image.manifest.v1+json', 'application/spdx+json')).toBe('sbom');
  });
});

describe('pull commands', () => {
  it('pulls a tag with ":" and a digest with "@"', () => {
    expect(pullCommands('reg:5000', 'team/app', 'v1').docker).toBe('docker pull reg:5000/team/app:v1');
    expect(pullCommands('reg', 'app', 'sha256:ab').podman).toBe('podman pull reg/app@sha256:ab');
    expect(pullCommands('reg', 'team/app', 'v1').crane).toBe('crane pull reg/team/app:v1 app.tar');
  });
});

describe('small formats', () => {
  it('shortens digests and prints platforms', () => {
    expect(shortDigest(`sha256:${'a'.repeat(64)}`)).toBe(`sha256:${'a'.repeat(12)}…`);
    expect(shortDigest('sha256:abc')).toBe('sha256:abc');
    expect(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' })).toBe('linux/arm/v7');
    expect(formatPlatform(undefined)).toBe('—');
    expect(plural(1, 'tag')).toBe('1 tag');
    expect(plural(10000, 'tag')).toBe('10,000 tags');
  });
});
