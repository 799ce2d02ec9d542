import { type Config, type ConfigIssue, formatKeyPath, quoted } from '@angos/config';
import { UpstreamClient } from './client.js';
import { UpstreamSetupError } from './errors.js';

/**
 * What keeps the configured upstreams from being used, one issue per key: TLS files
 * (`server_ca_bundle`, `client_certificate`, `client_private_key`) that cannot be read. Checked
 * when a configuration loads, so a typo stops startup (or is rejected on reload) naming the key,
 * instead of failing every pull of the repository later.
 */
export function checkUpstreamConfig(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const [repository, settings] of Object.entries(config.repository)) {
    settings.upstream.forEach((upstream, index) => {
      try {
        new UpstreamClient({
          repository,
          config: upstream,
          maxManifestBytes: config.global.max_manifest_size,
        }).close();
      } catch (error) {
        if (!(error instanceof UpstreamSetupError)) throw error;
        issues.push({
          path: formatKeyPath(['repository', quoted(repository), 'upstream', index, error.option]),
          message: error.message,
        });
      }
    });
  }
  return issues;
}
