/** A destructive action waiting for the user's confirmation in ConfirmDialog. */
export interface Confirmation {
  readonly title: string;
  /** What will happen, in one sentence. */
  readonly message: string;
  /** The subject (a tag, a digest, a job id), shown in monospace. */
  readonly subject: string;
  readonly confirmLabel: string;
  /** Runs on confirm; a rejection is shown in the dialog, which then stays open. */
  readonly run: () => Promise<void>;
}
