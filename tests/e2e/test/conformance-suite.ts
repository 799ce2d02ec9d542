import { access, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type RunResult, run, runOk } from '@angos/test-support';

/**
 * The official OCI distribution-spec conformance suite, built with Go and cached, so that only the
 * first run on a machine pays for the build.
 *
 * A pinned commit of its main branch (the rewritten suite, `go install` from the Go module proxy),
 * run with OCI_VERSION=1.1. The v1.1.1 release is not a module version of the `conformance`
 * sub-module, so the module proxy cannot serve it; the main suite covers its workflows and more.
 */
export interface ConformanceSuite {
  /** How reports name it. */
  readonly name: string;
  /** The cache directory under ~/.cache/angos/conformance. */
  readonly cacheName: string;
  /** The file name of the built binary. */
  readonly binaryName: string;
  /** Arguments of a run. */
  readonly args: readonly string[];
  /** Builds the binary into `dir` (empty, on the cache's file system), named `binaryName`. */
  build(dir: string): Promise<void>;
  /** What this source must match to reuse a cached binary; rebuilt when it differs. */
  stamp(): Promise<string>;
  /** The suite's environment: registry, repositories, workflows, and where to write its reports. */
  env(registry: ConformanceTarget, reportDir: string): Record<string, string>;
  /** The JUnit report it writes into the report directory. */
  readonly junitFile: string;
}

export interface ConformanceTarget {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `127.0.0.1:<port>` */
  readonly host: string;
  /**
   * Whether blob and manifest GETs answer 307 to the storage (S3). The storage's response cannot
   * carry Docker-Content-Digest, which spec 1.1 only recommends (its next version requires it):
   * the suite then checks the header wherever it is present, without requiring it.
   */
  readonly redirectsToStorage: boolean;
}

/** A recent commit of distribution-spec's main branch (2026-08-31), as a Go pseudo-version. */
export const MAIN_PSEUDO_VERSION = 'v0.0.0-20260831232431-97274622c111';
const MAIN_MODULE = 'github.com/opencontainers/distribution-spec/conformance';

/** The bound on one `go` build, downloads of its dependencies included. */
const BUILD_TIMEOUT_MS = 10 * 60_000;

function goEnv(): NodeJS.ProcessEnv {
  // Module mode for the vendored package, whatever the caller's GOFLAGS say.
  return { ...process.env, GO111MODULE: 'on', GOFLAGS: '-mod=readonly -buildvcs=false' };
}

/**
 * Everything in the conformance environment is set here: OCI_* variables of the caller's shell
 * would otherwise change what the suite tests.
 */
function withoutOciVariables(env: Record<string, string>): Record<string, string> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] => !entry[0].startsWith('OCI_') && entry[1] !== undefined,
    ),
  );
  return { ...base, ...env };
}

export const CONFORMANCE_SUITES: readonly ConformanceSuite[] = [
  {
    name: `main@${MAIN_PSEUDO_VERSION.slice(-12)}`,
    cacheName: MAIN_PSEUDO_VERSION,
    binaryName: 'conformance',
    args: [],
    junitFile: 'junit.xml',
    stamp: async () => `${MAIN_MODULE}@${MAIN_PSEUDO_VERSION}`,
    async build(dir) {
      await runOk('go', ['install', `${MAIN_MODULE}@${MAIN_PSEUDO_VERSION}`], {
        cwd: dir,
        env: { ...goEnv(), GOBIN: dir },
        timeoutMs: BUILD_TIMEOUT_MS,
      });
    },
    env: (registry, reportDir) =>
      withoutOciVariables({
        OCI_REGISTRY: registry.host,
        OCI_TLS: 'disabled',
        OCI_REPO1: 'conformance/main/repo1',
        OCI_REPO2: 'conformance/main/repo2',
        OCI_VERSION: '1.1',
        // The optional APIs, on even where 1.1 already defaults to on: deletes (immediate),
        // referrers, mounts without `from` (Angos answers 202, which the suite accepts),
        // cancelled uploads, Docker-Content-Digest on every response (see redirectsToStorage), and
        // `?tag=` on a push by digest.
        OCI_API_BLOBS_DELETE: 'true',
        OCI_API_BLOBS_ATOMIC: 'true',
        OCI_API_BLOBS_MOUNT_ANONYMOUS: 'true',
        OCI_API_BLOBS_UPLOAD_CANCEL: 'true',
        OCI_API_BLOBS_DIGEST_HEADER: String(!registry.redirectsToStorage),
        OCI_API_MANIFESTS_DELETE: 'true',
        OCI_API_MANIFESTS_ATOMIC: 'true',
        OCI_API_MANIFESTS_DIGEST_HEADER: String(!registry.redirectsToStorage),
        OCI_API_MANIFESTS_TAG_PARAM: 'true',
        OCI_API_TAGS_DELETE: 'true',
        OCI_API_TAGS_ATOMIC: 'true',
        OCI_API_TAGS_LIST: 'true',
        OCI_API_REFERRER: 'true',
        // Every kind of content, sha512 and manifests with descriptors never pushed included.
        OCI_DATA_SHA512: 'true',
        OCI_DATA_SPARSE: 'true',
        OCI_RESULTS_DIR: reportDir,
        OCI_LOG: 'warn',
      }),
  },
];

/** Beside the binary: what it was built from. */
const STAMP_FILE = 'source.stamp';

function cacheRoot(): string {
  return join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'angos', 'conformance');
}

async function existing(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * The suite's binary: from the cache when it was built from the same source, else built now into
 * a fresh directory that then replaces the cached one (a concurrent run sees one or the other).
 */
export async function conformanceBinary(suite: ConformanceSuite): Promise<string> {
  const root = cacheRoot();
  const dir = join(root, suite.cacheName);
  const stamp = await suite.stamp();
  const binary = join(dir, suite.binaryName);
  const cached = await readFile(join(dir, STAMP_FILE), 'utf8').catch(() => undefined);
  if (cached === stamp && (await existing(binary))) return binary;
  await mkdir(root, { recursive: true });
  const staging = await mkdtemp(join(root, `.${suite.cacheName}-`));
  try {
    await suite.build(staging);
    await writeFile(join(staging, STAMP_FILE), stamp);
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir).catch(async (error: unknown) => {
      // Another run put its build there in between: as good as ours.
      if ((await readFile(join(dir, STAMP_FILE), 'utf8').catch(() => undefined)) !== stamp) throw error;
    });
    return binary;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

export interface ConformanceReport {
  passed: number;
  failed: { name: string; message: string }[];
  skipped: number;
}

const decodeXml = (text: string): string =>
  text
    .replace(/&#x([0-9a-f]+);/gi, (_m, hex: string) => String.fromCodePoint(Number.parseInt(hex, 16)))
    .replace(/&#([0-9]+);/g, (_m, dec: string) => String.fromCodePoint(Number(dec)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/**
 * Counts the test cases of a JUnit report: Ginkgo's (`status="failed"`) and the main
 * branch's (`status="failure"` or `"error"`). A case with a `<failure>` or `<error>` element fails
 * whatever its status says.
 */
export function parseJunit(xml: string): ConformanceReport {
  const report: ConformanceReport = { passed: 0, failed: [], skipped: 0 };
  const testcase = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const match of xml.matchAll(testcase)) {
    const attributes = match[1] ?? '';
    const body = match[3] ?? '';
    const name = decodeXml(/\bname="([^"]*)"/.exec(attributes)?.[1] ?? '(unnamed)');
    const status = /\bstatus="([^"]*)"/.exec(attributes)?.[1] ?? '';
    const failure = /<(failure|error)\b([^>]*)>/.exec(body);
    if (failure || ['failed', 'failure', 'error'].includes(status)) {
      // Ginkgo says why in the failure's message, the main branch's suite in the case's stdout.
      const why =
        /\bmessage="([^"]*)"/.exec(failure?.[2] ?? '')?.[1] ??
        /<system-out>([\s\S]*?)<\/system-out>/.exec(body)?.[1] ??
        status;
      const message = decodeXml(why);
      report.failed.push({ name, message: message.slice(0, 500) });
    } else if (status === 'skipped' || /<skipped\b/.test(body)) {
      report.skipped++;
    } else {
      report.passed++;
    }
  }
  return report;
}

/** Runs a built suite against a registry; resolves with its exit and its JUnit report. */
export async function runConformance(
  suite: ConformanceSuite,
  binary: string,
  registry: ConformanceTarget,
  reportDir: string,
): Promise<{ result: RunResult; report: ConformanceReport }> {
  await mkdir(reportDir, { recursive: true });
  // The working directory is the report directory: no oci-conformance.yaml is read from there.
  const result = await run(binary, suite.args, {
    cwd: reportDir,
    env: suite.env(registry, reportDir),
    timeoutMs: 150_000,
  });
  const junit = await readFile(join(reportDir, suite.junitFile), 'utf8').catch(() => '');
  return { result, report: parseJunit(junit) };
}
