import { httpUrl, nonEmptyString } from '../scalars.js';
import { optional, table } from '../schema.js';
import type { ServicesConfig } from '../types.js';

/** Shorter shared secrets are guessable enough to be worth a warning. */
const MIN_RECOMMENDED_TOKEN_LENGTH = 16;

/**
 * `[services]` (project-specific, not in the configuration reference): how the split deployment's
 * gateway reaches registry-api and proves to it that a request passed the gateway.
 */
export const servicesSchema = table<ServicesConfig>(
  {
    registry_api_url: optional(httpUrl()),
    internal_token: optional(nonEmptyString()),
  },
  {
    check(services, at) {
      if (services.registry_api_url !== undefined && services.internal_token === undefined) {
        at.error('internal_token', 'required when registry_api_url is set');
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
