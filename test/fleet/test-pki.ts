/**
 * Test harness: a throwaway PKI made with the `openssl` command (Debian `openssl`) — a CA,
 * a server certificate for 127.0.0.1 (also usable between etcd peers), a client
 * certificate, and an unrelated second CA for tests that must be refused. EC P-256 keys,
 * valid for two days. Nothing here is for production: see docs/OPERATIONS.md for a fleet's
 * certificates.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where Debian installs it; override with BACKVAULT_OPENSSL_BIN. */
export const OPENSSL_BIN = process.env.BACKVAULT_OPENSSL_BIN ?? '/usr/bin/openssl';

/** Files (PEM) of a {@link makeTestPki} PKI, and the client material as bytes. */
export interface TestPki {
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  /** A CA that signed none of the above. */
  readonly otherCaFile: string;
  readonly ca: Buffer;
  readonly clientCert: Buffer;
  readonly clientKey: Buffer;
  readonly otherCa: Buffer;
}

function openssl(args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(OPENSSL_BIN, args, { cwd, timeout: 30_000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`openssl ${args[0] ?? ''} failed: ${stderr || err.message}`));
      else resolve();
    });
  });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

async function ca(dir: string, name: string): Promise<void> {
  await openssl(
    ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2'].concat([
      '-subj',
      `/CN=backvault test ${name}`,
    ]),
    dir,
  );
}

async function leaf(dir: string, name: string, signer: string, ext: string): Promise<void> {
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(
    ['req', ...EC, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`],
    dir,
  );
  await openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', `${signer}.pem`, '-CAkey', `${signer}.key`]
      .concat(['-CAcreateserial', '-out', `${name}.pem`, '-days', '2'])
      .concat(['-extfile', `${name}.ext`]),
    dir,
  );
}

/**
 * Creates the PKI in `dir` (created if missing).
 * @throws Error naming `apt-get install openssl` when the command is missing.
 */
export async function makeTestPki(dir: string): Promise<TestPki> {
  if (!existsSync(OPENSSL_BIN)) {
    throw new Error(
      `openssl is not installed (${OPENSSL_BIN} not found). The etcd TLS tests make their ` +
        'certificates with it: run `apt-get install -y openssl` as root (`make test` does).',
    );
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await ca(dir, 'ca');
  await ca(dir, 'other-ca');
  // etcd members use the server certificate both to serve and to dial their peers.
  await leaf(
    dir,
    'server',
    'ca',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  await leaf(dir, 'client', 'ca', 'extendedKeyUsage=clientAuth\n');
  const f = (n: string): string => join(dir, n);
  return {
    caFile: f('ca.pem'),
    serverCertFile: f('server.pem'),
    serverKeyFile: f('server-key.pem'),
    clientCertFile: f('client.pem'),
    clientKeyFile: f('client-key.pem'),
    otherCaFile: f('other-ca.pem'),
    ca: await readFile(f('ca.pem')),
    clientCert: await readFile(f('client.pem')),
    clientKey: await readFile(f('client-key.pem')),
    otherCa: await readFile(f('other-ca.pem')),
  };
}
