import {
  linksCheck,
  manifestsCheck,
  mediaTypesCheck,
  referrersCheck,
  tagsCheck,
  tempFilesCheck,
  uploadsCheck,
} from './checks/index.js';
import { type RetentionSettings, retentionCheck } from './checks/retention.js';
import type { ScrubCheck } from './types.js';

/** The checks of one `angos scrub` run, as its flags ask for them. */
export interface ScrubSelection {
  readonly tags?: boolean | undefined;
  readonly manifests?: boolean | undefined;
  readonly links?: boolean | undefined;
  readonly mediaTypes?: boolean | undefined;
  readonly referrers?: boolean | undefined;
  /** `--uploads <duration>`: upload sessions and fs temp files. */
  readonly uploads?: boolean | undefined;
  /** `--retention`: the retention rules of the configuration, compiled. */
  readonly retention?: RetentionSettings | undefined;
}

/**
 * The checks selected, in the one order every run uses: tags before the revisions they point at,
 * revisions before the referrer links of theirs, so that no check's repair turns up work for an
 * earlier one, and a dry run plans exactly what a real run then does.
 */
export function checksFor(selection: ScrubSelection): ScrubCheck[] {
  const ordered: Array<[boolean | undefined, ScrubCheck[]]> = [
    [selection.tags, [tagsCheck]],
    [selection.manifests, [manifestsCheck]],
    [selection.links, [linksCheck]],
    [selection.mediaTypes, [mediaTypesCheck]],
    [selection.referrers, [referrersCheck]],
    [selection.uploads, [uploadsCheck, tempFilesCheck]],
    // After the repairs, so that it decides on sound links; before the garbage-collection pass.
    [selection.retention !== undefined, selection.retention ? [retentionCheck(selection.retention)] : []],
  ];
  return ordered.flatMap(([selected, checks]) => (selected ? checks : []));
}
