/** One problem found in a configuration: where (`path`) and why (`message`). */
export interface ConfigIssue {
  /** Key path such as `repository."team".upstream[0].url`, or the file path for file-level problems. */
  path: string;
  message: string;
  /** Set for TOML syntax errors, 1-based. */
  line?: number;
  column?: number;
}

/** Something accepted but worth telling the operator about (deprecated keys, risky settings). */
export interface ConfigWarning {
  path: string;
  message: string;
}

export function formatIssue(issue: { path: string; message: string }): string {
  return `${issue.path}: ${issue.message}`;
}

/**
 * Thrown when a configuration cannot be used. Carries every issue found, not just the first, so an
 * operator fixes them all in one round; the message lists them one per line as `path: reason`.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly issues: ConfigIssue[];
  /** The file (or other source label) the configuration came from, when known. */
  readonly source: string | undefined;

  constructor(issues: ConfigIssue[], source?: string) {
    super(issues.map(formatIssue).join('\n'));
    this.issues = issues;
    this.source = source;
  }
}

export function isConfigError(value: unknown): value is ConfigError {
  return value instanceof ConfigError;
}
