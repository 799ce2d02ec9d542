import { httpUrl, nonEmptyString } from '../scalars.js';
import { optional, table } from '../schema.js';
import type { ServicesConfig } from '../types.js';

/** Shorter shared secrets are guessable enough to be worth a warning. */
const MIN_RECOMMENDED_TOKEN_LENGTH = 16;

/**
 * `[services]` (project-specific, not in the configuration reference): how the split deployment's
 * gateway reaches registry-api (and pull-through-cache) and proves to it that a request passed the gateway.
 */
export const servicesSchema = table<ServicesConfig>(
  {
    registry_api_url: optional(httpUrl()),
    pull_through_cache_url: optional(httpUrl()),
    internal_token: optional(nonEmptyString()),
  },
  {
    check(services, at) {
      for (const url of ['registry_api_url', 'pull_through_cache_url'] as const) {
        if (services[url] !== undefined && services.internal_token === undefined) {
          at.error('internal_token', `required when ${url} is set`);
        }
      }
      if (
        services.internal_token !== undefined &&
        services.internal_token.length < MIN_RECOMMENDED_TOKEN_LENGTH
      ) {
        at.warn(
          'internal_token',
          `shorter than ${MIN_RECOMMENDED_TOKEN_LENGTH} characters; use a long random secret`,
        );
      }
    },
  },
);
