import { beforeAll, describe, expect, it } from 'vitest';
import { CONFORMANCE_SUITES, conformanceBinary, runConformance } from './conformance-suite.js';
import { type Deployment, deployments, skipWithoutClients, useRegistry } from './fixture.js';

/**
 * The official OCI distribution-spec conformance suite, at a pinned commit of its main branch,
 * with every optional workflow and test on, against `angos server` on fs and on S3 and against
 * the split pair (registry-api behind the gateway), and on fs against both with 2 serving threads per
 * process. Each must report 0 failures.
 */
const TARGETS: readonly Deployment['label'][] = ['server on fs', 'server on S3', 'split on fs'];

/** The same on serving threads: every request of the suite lands on either thread. */
const THREADED: readonly Deployment[] = [
  { mode: 'server', storage: 'fs', label: 'server of 2 serving threads on fs', workers: 2 },
  { mode: 'split', storage: 'fs', label: 'split of 2 serving threads each on fs', workers: 2 },
];

describe.skipIf(skipWithoutClients('go'))('OCI distribution-spec conformance', () => {
  const binaries = new Map<string, string>();
  beforeAll(async () => {
    // Built once per machine and cached (~/.cache/angos/conformance); a first build takes minutes.
    for (const suite of CONFORMANCE_SUITES) binaries.set(suite.name, await conformanceBinary(suite));
  }, 20 * 60_000);

  describe.each([...deployments().filter((deployment) => TARGETS.includes(deployment.label)), ...THREADED])(
    'against angos $label',
    (deployment) => {
      const registry = useRegistry(deployment, ['go']);

      it.each(CONFORMANCE_SUITES)(
        '$name reports 0 failures',
        async (suite) => {
          const { result, report } = await runConformance(
            suite,
            binaries.get(suite.name)!,
            {
              url: registry.angos.url,
              host: registry.angos.host,
              // Every S3 set-up of the fixture redirects GETs to the storage (the default).
              redirectsToStorage: deployment.storage !== 'fs',
            },
            registry.path(`conformance-${suite.cacheName}`),
          );
          console.log(
            `conformance ${suite.name} against angos ${deployment.label}: ${report.passed} passed, ` +
              `${report.failed.length} failed, ${report.skipped} skipped (${result.durationMs} ms)`,
          );
          const output = `${result.stdout.slice(-8000)}\n${result.stderr.slice(-8000)}`;
          expect(report.failed, output).toEqual([]);
          // A suite that ran nothing (a wrong variable, an unreachable registry) passes nothing either.
          expect(report.passed, output).toBeGreaterThan(50);
          expect(result.timedOut, output).toBe(false);
          expect(result.code, output).toBe(0);
        },
        180_000,
      );
    },
  );
});
