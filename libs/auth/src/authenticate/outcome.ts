/**
 * What one step of the authentication chain concluded: it established (part of) an identity, the
 * client presented credentials it rejects, or the client presented nothing it handles. A rejection
 * never ends the chain (authentication is fail-open); it is counted and the next method runs.
 */
export type StepOutcome<T> =
  | { readonly outcome: 'authenticated'; readonly value: T }
  | { readonly outcome: 'rejected'; readonly reason: string }
  | { readonly outcome: 'absent' };

export const ABSENT = { outcome: 'absent' } as const;

export function authenticated<T>(value: T): StepOutcome<T> {
  return { outcome: 'authenticated', value };
}

export function rejected(reason: string): StepOutcome<never> {
  return { outcome: 'rejected', reason };
}
