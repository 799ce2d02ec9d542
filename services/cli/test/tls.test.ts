import { copyFileSync, renameSync } from 'node:fs';
import { type Agent, Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { captureLogger, createTestCa, eventually, type Issued, type TestCa } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseConfig, runAngos } from './helpers.js';
import { useInProcessServer } from './in-process.js';

const { ws, start } = useInProcessServer();
let ca: TestCa;
let otherCa: TestCa;
beforeAll(async () => {
  ca = createTestCa('Angos Test CA');
  otherCa = createTestCa('Someone Else');
});
afterAll(async () => {
  ca.remove();
  otherCa.remove();
});

interface Answer {
  status: number;
  body: string;
  /** Serial number of the certificate the server presented. */
  serverSerial: string;
}

/** GET over TLS trusting the test CA, optionally presenting a client certificate. */
function get(
  port: number,
  path: string,
  options: { client?: Issued; agent?: Agent; headers?: Record<string, string> } = {},
) {
  return new Promise<Answer>((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        ca: ca.cert,
        ...(options.client === undefined ? {} : { cert: options.client.cert, key: options.client.key }),
        ...(options.agent === undefined ? { agent: false } : { agent: options.agent }),
        headers: options.headers ?? {},
      },
      (res) => {
        const serverSerial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serverSerial }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('[server.tls]', () => {
  it('serves HTTPS and identifies mTLS clients by their verified certificate', async () => {
    const server = ca.issue('server-mtls', { subject: '/CN=localhost', usage: 'server' });
    const robot = ca.issue('robot', { subject: '/CN=robot-1/O=Platform', usage: 'client' });
    const intern = ca.issue('intern', { subject: '/CN=intern/O=Interns', usage: 'client' });
    const stranger = otherCa.issue('stranger', { subject: '/CN=robot-1/O=Platform', usage: 'client' });
    const expired = ca.issue('expired', {
      subject: '/CN=robot-1/O=Platform',
      usage: 'client',
      startdate: '20200101000000Z',
      enddate: '20200102000000Z',
    });
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        1,
        `[server.tls]
server_certificate_bundle = "${server.certPath}"
server_private_key = "${server.keyPath}"
client_ca_bundle = "${ca.certPath}"
[global.access_policy]
default = "deny"
rules = ["has(identity.certificate) && 'Platform' in identity.certificate.organizations && 'robot-1' in identity.certificate.common_names"]
`,
      ),
    );
    const { logger } = captureLogger('info');
    const service = await start(logger);
    const port = service.address.port;

    expect((await get(port, '/v2/', { client: robot })).status).toBe(200);
    // Verified, but not allowed: an identity, so 403.
    expect((await get(port, '/v2/', { client: intern })).status).toBe(403);
    // No certificate, one from another CA with the same subject, an expired one: anonymous, 401.
    expect((await get(port, '/v2/')).status).toBe(401);
    expect((await get(port, '/v2/', { client: stranger })).status).toBe(401);
    expect((await get(port, '/v2/', { client: expired })).status).toBe(401);
    const metrics = (await get(port, '/metrics')).body;
    expect(metrics).toContain('auth_attempts_total{method="mtls",result="success"} 2');
    expect(metrics).toContain('auth_attempts_total{method="mtls",result="failed"} 2');
  });

  it('reloads renewed certificate files without a restart and without dropping connections', async () => {
    const first = ca.issue('server-first', { subject: '/CN=localhost', usage: 'server' });
    const second = ca.issue('server-second', { subject: '/CN=localhost', usage: 'server' });
    const certPath = join(ws().dir, 'tls.crt');
    const keyPath = join(ws().dir, 'tls.key');
    copyFileSync(first.certPath, certPath);
    copyFileSync(first.keyPath, keyPath);
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        1,
        `[server.tls]\nserver_certificate_bundle = "${certPath}"\nserver_private_key = "${keyPath}"\n[global.access_policy]\ndefault = "allow"\n`,
      ),
    );
    const { logger, output } = captureLogger('info');
    const service = await start(logger);
    const port = service.address.port;
    const keepAlive = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: ca.cert });
    const before = await get(port, '/v2/', { agent: keepAlive });
    expect(before.status).toBe(200);

    // Renewal the way tools write it: each file replaced by a rename.
    copyFileSync(second.keyPath, `${keyPath}.new`);
    renameSync(`${keyPath}.new`, keyPath);
    copyFileSync(second.certPath, `${certPath}.new`);
    renameSync(`${certPath}.new`, certPath);
    await eventually(async () => (await get(port, '/v2/')).serverSerial !== before.serverSerial);
    expect(output()).toContain('TLS certificate reloaded');

    // The connection opened before the renewal is still served.
    const reused = await get(port, '/v2/', { agent: keepAlive });
    expect(reused.status).toBe(200);
    expect(reused.serverSerial).toBe(before.serverSerial);
    keepAlive.destroy();
  });

  it('refuses to start when the certificate files cannot be read or do not match', async () => {
    const server = ca.issue('server-mismatch', { subject: '/CN=localhost', usage: 'server' });
    const other = ca.issue('server-other', { subject: '/CN=localhost', usage: 'server' });
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        1,
        `[server.tls]\nserver_certificate_bundle = "${join(ws().dir, 'missing.crt')}"\nserver_private_key = "${server.keyPath}"\n`,
      ),
    );
    const missing = await runAngos(['-c', ws().configPath, 'server', '--listen', '127.0.0.1:0']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('server.tls.server_certificate_bundle: cannot read');
    expect(missing.stderr).toContain('ENOENT');

    await ws().writeConfig(
      baseConfig(
        ws().dir,
        1,
        `[server.tls]\nserver_certificate_bundle = "${server.certPath}"\nserver_private_key = "${other.keyPath}"\n`,
      ),
    );
    const mismatch = await runAngos(['-c', ws().configPath, 'server', '--listen', '127.0.0.1:0']);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain('server.tls: unusable certificate or key');
    // Two `angos` processes start and exit: seconds each on a loaded machine.
  }, 60_000);
});
