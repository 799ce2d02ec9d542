export { type AngosInstance, type AngosMode, type StartAngosOptions, startAngos } from './angos.js';
export { exited, terminate, track } from './children.js';
export { configOf } from './config.js';
export { type ContainersEnvOptions, containersEnv } from './containers-env.js';
export {
  DISTRIBUTION_USER,
  type Distribution,
  type StartDistributionOptions,
  startDistribution,
} from './distribution.js';
export { writeDockerArchive } from './docker-archive.js';
export { type Dockerd, type StartDockerdOptions, startDockerd } from './dockerd.js';
export { type EventuallyOptions, eventually } from './eventually.js';
export { type Listening, listenOnFreePort } from './listen.js';
export { type CapturedLogger, captureLogger } from './log-capture.js';
export { type FetchedManifest, MANIFEST_ACCEPT, OciClient, sha256 } from './oci-client.js';
export { type MkOciOptions, mkOci, type OciDescriptor, OciLayout } from './oci-layout.js';
export {
  inCi,
  installCommand,
  missingPrograms,
  onPath,
  RGW_PROGRAMS,
  requirePrograms,
  skipWithout,
  startOptional,
} from './optional.js';
export {
  decodeExportTraceRequest,
  type OtlpReceiver,
  type ReceivedSpan,
  startOtlpReceiver,
} from './otlp-receiver.js';
export { OutputTail } from './output-tail.js';
export { createTestCa, type Issued, type IssueOptions, type TestCa } from './pki.js';
export { freePort, freePortRange, portIsFree } from './ports.js';
export { type SeenRequest, startProxy, type TestProxy } from './proxy.js';
export { pushLayout } from './push-layout.js';
export { random } from './random.js';
export { type RedisServer, startRedisServer } from './redis-server.js';
export { angosLauncher, cliEntry, moduleTracePreload, repoRoot } from './repo-root.js';
export { type RgwOptions, restartRgwGateway, rgwDataDir, type S3Endpoint, startRgw, stopRgw } from './rgw.js';
export { RunError, type RunOptions, type RunResult, run, runOk } from './run.js';
export { type S3TestServer, skipWithoutS3, startS3ForTests, startS3TestServer } from './s3-server.js';
export {
  S3_TEST_RETRIES,
  s3Connection,
  s3Table,
  s3TestStores,
  type WipeableBucket,
  wipeBucket,
} from './s3-test-stores.js';
export { type SeededImage, seedImage } from './seed-image.js';
export { type TarEntry, tar } from './tar.js';
export {
  startTokenIssuer,
  type TokenAccess,
  type TokenIssuer,
  type TokenIssuerOptions,
  type TokenIssuerSettings,
  type TokenRequest,
} from './token-issuer.js';
export {
  type ReceivedDelivery,
  type ReceiverMode,
  startWebhookReceiver,
  type WebhookReceiver,
} from './webhook-receiver.js';
