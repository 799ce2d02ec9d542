/**
 * A failure that retrying cannot fix (a peer answered 401 or 403, the payload makes no sense):
 * the job goes to the dead letter at once, whatever attempts it has left.
 */
export class TerminalJobError extends Error {
  override readonly name = 'TerminalJobError';
}
