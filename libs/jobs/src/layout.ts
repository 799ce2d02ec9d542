import { createHash } from 'node:crypto';
import { keyFor } from '@angos/storage';

/** The storage paths of one queue (keys.ts draws the tree). */
export const paths = {
  queues: () => keyFor({ kind: 'jobQueues' }),
  queue: (queue: string) => keyFor({ kind: 'jobQueue', queue }),
  pendingDir: (queue: string) => keyFor({ kind: 'jobsPending', queue }),
  pending: (queue: string, name: string) => keyFor({ kind: 'jobPending', queue, name }),
  claimsDir: (queue: string) => keyFor({ kind: 'jobClaims', queue }),
  claim: (queue: string, id: string) => keyFor({ kind: 'jobClaim', queue, id }),
  // Lock keys hold `/` and `:` (`tag:team/app:latest`): hashed into one segment every backend accepts.
  lockKey: (queue: string, lockKey: string) =>
    keyFor({ kind: 'jobLockKey', queue, hash: createHash('sha256').update(lockKey).digest('hex') }),
  failedDir: (queue: string) => keyFor({ kind: 'jobsFailed', queue }),
  failed: (queue: string, id: string) => keyFor({ kind: 'jobFailed', queue, id }),
  quarantineDir: (queue: string) => keyFor({ kind: 'jobsQuarantined', queue }),
  quarantined: (queue: string, name: string) => keyFor({ kind: 'jobQuarantined', queue, name }),
};
