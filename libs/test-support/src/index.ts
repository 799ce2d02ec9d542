export { type AngosInstance, type AngosMode, type StartAngosOptions, startAngos } from './angos.js';
export { type ContainersEnvOptions, containersEnv } from './containers-env.js';
export { type FetchedManifest, MANIFEST_ACCEPT, OciClient, sha256 } from './oci-client.js';
export { type MkOciOptions, mkOci, type OciDescriptor, OciLayout } from './oci-layout.js';
export { createTestCa, type Issued, type IssueOptions, type TestCa } from './pki.js';
export { freePort } from './ports.js';
export { cliEntry, moduleTracePreload, repoRoot, sharedToolsDir } from './repo-root.js';
export { RunError, type RunOptions, type RunResult, run, runOk } from './run.js';
