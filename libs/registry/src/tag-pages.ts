/** The characters a tag may hold (distribution-spec `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`), in code point order. */
const TAG_CHARACTERS = '-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
const MAX_TAG_LENGTH = 128;
/** Sorts after every tag character, and is a plain character of a storage key. */
const ABOVE_EVERY_TAG_CHARACTER = '~';

/**
 * Where a page of tags after `last` starts in the store: a name such that, for every valid tag,
 * `tag > name` exactly when `tag > last` (undefined: from the first tag).
 *
 * `last` is whatever the client sent (`?last=`), but the store's listing starts after a key
 * (S3 `StartAfter`), which must be a plain key segment: no `/`, no control characters, at most
 * 1,024 bytes. Tags are short runs of a few ASCII characters, so any `last` has such a stand-in:
 * it keeps the longest run of tag characters `last` starts with, then replaces the first other
 * character by the greatest tag character below it followed by `~` (which sorts after every tag
 * character), or drops it when no tag character sorts below it. A `last` longer than any tag is
 * cut to the longest tag it starts with. A valid tag stands for itself.
 */
export function tagListingStart(last: string | undefined): string | undefined {
  if (last === undefined) return undefined;
  let length = 0;
  while (length < last.length && length < MAX_TAG_LENGTH && TAG_CHARACTERS.includes(last[length]!)) length++;
  const kept = last.slice(0, length);
  if (length === last.length || length === MAX_TAG_LENGTH) return kept === '' ? undefined : kept;
  const other = last[length]!;
  let below: string | undefined;
  for (const character of TAG_CHARACTERS) if (character < other) below = character;
  if (below !== undefined) return `${kept}${below}${ABOVE_EVERY_TAG_CHARACTER}`;
  return kept === '' ? undefined : kept;
}
