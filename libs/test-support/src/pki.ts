import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and key issued by a test CA, as files and as PEM text. */
export interface Issued {
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: string;
  readonly key: string;
}

export interface IssueOptions {
  /** OpenSSL subject, e.g. `/CN=robot-1/O=Platform`. */
  readonly subject: string;
  readonly usage: 'server' | 'client';
  /** Validity as `YYYYMMDDHHMMSSZ`; default now until tomorrow. */
  readonly startdate?: string;
  readonly enddate?: string;
}

export interface TestCa {
  readonly dir: string;
  readonly certPath: string;
  readonly cert: string;
  issue(name: string, options: IssueOptions): Issued;
  remove(): void;
}

const CA_CONFIG = `
[ ca ]
default_ca = ca_default
[ ca_default ]
dir = .
database = ./index.txt
new_certs_dir = .
serial = ./serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
default_days = 1
[ policy_any ]
commonName = supplied
organizationName = optional
[ server ]
basicConstraints = CA:FALSE
subjectAltName = IP:127.0.0.1,DNS:localhost
extendedKeyUsage = serverAuth
[ client ]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
`;

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A throwaway certificate authority made with openssl, with P-256 keys (fast to generate). */
export function createTestCa(name = 'Test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'angos-pki-'));
  mkdirSync(join(dir, 'issued'));
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '01\n');
  writeFileSync(join(dir, 'ca.cnf'), CA_CONFIG);
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, [
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  ]);
  const certPath = join(dir, 'ca.crt');
  return {
    dir,
    certPath,
    cert: readFileSync(certPath, 'utf8'),
    issue(leaf, options) {
      const keyPath = join(dir, 'issued', `${leaf}.key`);
      const csrPath = join(dir, 'issued', `${leaf}.csr`);
      const certPathOut = join(dir, 'issued', `${leaf}.crt`);
      openssl(dir, ['req', ...ecKey, '-keyout', keyPath, '-out', csrPath, '-subj', options.subject]);
      openssl(dir, [
        'ca',
        '-batch',
        '-config',
        'ca.cnf',
        '-cert',
        'ca.crt',
        '-keyfile',
        'ca.key',
        '-in',
        csrPath,
        '-out',
        certPathOut,
        '-extensions',
        options.usage,
        '-notext',
        ...(options.startdate === undefined ? [] : ['-startdate', options.startdate]),
        ...(options.enddate === undefined ? [] : ['-enddate', options.enddate]),
      ]);
      return {
        certPath: certPathOut,
        keyPath,
        cert: readFileSync(certPathOut, 'utf8'),
        key: readFileSync(keyPath, 'utf8'),
      };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
