import { boolean, nonEmptyString, oneOf } from '../scalars.js';
import { arrayOf, legacyKey, table, withDefault } from '../schema.js';
import type { AccessPolicyConfig, PolicyDefault, RetentionPolicyConfig } from '../types.js';

/**
 * CEL rule lists. Each rule must be a non-empty expression; compiling and type-checking CEL is the
 * policy engine's job when it loads the configuration.
 */
const celRules = () => arrayOf(nonEmptyString(), { expected: 'expected array of CEL expressions' });

/** `[global.access_policy]` and `[repository."<namespace>".access_policy]`. */
export const accessPolicySchema = table<AccessPolicyConfig>(
  {
    default: withDefault(oneOf<PolicyDefault>(['allow', 'deny']), 'deny'),
    rules: withDefault(celRules(), () => []),
  },
  {
    legacy: {
      default_allow: legacyKey<AccessPolicyConfig, 'default', boolean>(
        'default',
        boolean(),
        (allow) => (allow ? 'allow' : 'deny'),
        'deprecated; use default = "allow" or default = "deny"',
      ),
    },
  },
);

/** `[global.retention_policy]` and `[repository."<namespace>".retention_policy]`. */
export const retentionPolicySchema = table<RetentionPolicyConfig>({
  rules: withDefault(celRules(), () => []),
});
