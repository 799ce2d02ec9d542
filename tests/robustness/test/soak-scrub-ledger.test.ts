import { describe, expect, it } from 'vitest';
import { type AcknowledgedTag, Ledger, parseScrubLog } from '../src/index.js';

/** How the scrub soak decides that a failed pull was retention at work, and nothing else. */
const HEX = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);
const line = (fields: Record<string, unknown>) => JSON.stringify({ level: 'INFO', ...fields });
const deleteManifest = (namespace: string, hex: string) =>
  line({
    message: 'repaired',
    check: 'retention',
    action: 'delete-manifest',
    key: `${namespace}/_manifests/revisions/sha256/${hex}/link`,
    reason: 'no rule keeps it (tags t1)',
  });
const tag = (namespace: string, hex: string): AcknowledgedTag => ({
  namespace,
  tag: 't1',
  digest: `sha256:${hex}`,
  blobs: [],
  acknowledgedAt: 0,
});

describe('scrub soak ledger', () => {
  it('counts a delete-manifest repair as a deletion, unless retention said it left the manifest in place', () => {
    const facts = parseScrubLog(
      [
        'not json',
        deleteManifest('soak/n0', HEX),
        line({
          message: 'retention left a manifest in place',
          namespace: 'soak/n1',
          digest: `sha256:${HEX}`,
        }),
        deleteManifest('soak/n1', HEX),
        line({
          message: 'repaired',
          check: 'tags',
          action: 'delete-tag',
          key: 'soak/n2/_manifests/tags/x/current/link',
        }),
        line({ message: 'repair failed', check: 'links', action: 'rewrite-link', key: 'k', error: 'boom' }),
      ].join('\n'),
    );
    expect(facts.deleted).toEqual([`soak/n0@sha256:${HEX}`]);
    expect(facts.repairs).toEqual({ 'retention delete-manifest': 2, 'tags delete-tag': 1 });
    expect(facts.failures).toHaveLength(1);
  });

  it('excuses a failed pull only for the manifest deleted, in its namespace, by a run started before the failure', () => {
    const ledger = new Ledger();
    ledger.recordDeletions([`soak/n0@sha256:${HEX}`], 1000);
    expect(ledger.deletedBy(tag('soak/n0', HEX), 1000)).toBe(true);
    expect(ledger.deletedBy(tag('soak/n0', HEX), 999)).toBe(false);
    expect(ledger.deletedBy(tag('soak/n1', HEX), 2000)).toBe(false);
    expect(ledger.deletedBy(tag('soak/n0', OTHER), 2000)).toBe(false);
    // A later run logging the same manifest again does not move the time of the first deletion.
    ledger.recordDeletions([`soak/n0@sha256:${HEX}`], 5000);
    expect(ledger.deletedBy(tag('soak/n0', HEX), 1500)).toBe(true);
    ledger.suspect({ tag: tag('soak/n0', HEX), at: 500, detail: 'before the run' });
    ledger.suspect({ tag: tag('soak/n0', HEX), at: 1500, detail: 'after the run started' });
    expect(ledger.unexcused().map((pull) => pull.detail)).toEqual(['before the run']);
  });

  it('hands out every acknowledged tag for a first pull, in order, once', () => {
    const ledger = new Ledger();
    expect(ledger.takeUnpulled()).toBeUndefined();
    ledger.acknowledge(tag('soak/n0', HEX));
    ledger.acknowledge(tag('soak/n1', OTHER));
    expect(ledger.takeUnpulled()?.namespace).toBe('soak/n0');
    expect(ledger.takeUnpulled()?.namespace).toBe('soak/n1');
    expect(ledger.takeUnpulled()).toBeUndefined();
    ledger.acknowledge(tag('soak/n2', HEX));
    expect(ledger.takeUnpulled()?.namespace).toBe('soak/n2');
  });
});
