/**
 * The queues Angos runs: the pull-through cache's, replication's and event delivery's (the `--queue` values of
 * `angos worker`). The jobs API answers for these only, so that a misspelt `?queue=` is an error
 * rather than an empty list.
 */
export const JOB_QUEUES = ['cache', 'replication', 'events'] as const;

export type JobQueueName = (typeof JOB_QUEUES)[number];

export function isJobQueue(name: string): name is JobQueueName {
  return (JOB_QUEUES as readonly string[]).includes(name);
}
