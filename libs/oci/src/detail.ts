/** Keeps a client-supplied value short enough to echo back in an error detail (paths may be 16 KiB). */
export function truncateForDetail(value: string, max = 256): string {
  return value.length <= max ? value : `${value.slice(0, max)}…`;
}
