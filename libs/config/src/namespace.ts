/** True when one namespace is the other or a path prefix of it (`team` and `team/app`). */
export function namespacesOverlap(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}
