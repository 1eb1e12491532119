/**
 * Test certificates made at test time by `openssl` (never committed): an EC P-256 CA, a server
 * certificate signed by it for IP:127.0.0.1 and DNS:localhost, a client certificate (CN
 * `turbocoap-test-client`, for mutual authentication), and a second, unrelated CA (a server
 * that presents the first CA's certificate is "untrusted" to a client that trusts only it).
 * The PEM files stay on disk (libcoap takes file names) until {@link Pki.remove}.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PkiFiles {
  /** PEM text */
  readonly pem: string;
  /** its file */
  readonly file: string;
}

export interface Pki {
  readonly dir: string;
  readonly ca: PkiFiles;
  readonly serverCert: PkiFiles;
  readonly serverKey: PkiFiles;
  readonly clientCert: PkiFiles;
  readonly clientKey: PkiFiles;
  /** A CA that signed nothing here. */
  readonly otherCa: PkiFiles;
  /** The client certificate's subject CN. */
  readonly clientCn: string;
  remove(): void;
}

/** Makes the certificates with the `openssl` binary (throws with openssl's output if it fails). */
export function makePki(openssl = 'openssl'): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'turbocoap-pki-'));
  const f = (n: string): string => join(dir, n);
  const run = (...args: string[]): void => {
    execFileSync(openssl, args, { cwd: dir, stdio: 'pipe' });
  };
  const clientCn = 'turbocoap-test-client';
  try {
    for (const ca of ['ca', 'other']) {
      run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f(`${ca}.key`));
      run('req', '-x509', '-new', '-key', f(`${ca}.key`), '-days', '2', '-subj', `/CN=turbocoap test ${ca} CA`, '-out', f(`${ca}.pem`));
    }
    const leaf = (name: string, cn: string, ext: string): void => {
      run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f(`${name}.key`));
      run('req', '-new', '-key', f(`${name}.key`), '-subj', `/CN=${cn}`, '-out', f(`${name}.csr`));
      writeFileSync(f(`${name}.ext`), ext);
      run('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`));
    };
    leaf('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    leaf('client', clientCn, 'extendedKeyUsage=clientAuth\n');
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`openssl failed: ${err.stderr?.toString() ?? err.message}`, { cause: e });
  }
  const pf = (n: string): PkiFiles => ({ file: f(n), pem: readFileSync(f(n), 'utf8') });
  return {
    dir,
    ca: pf('ca.pem'),
    serverCert: pf('server.pem'),
    serverKey: pf('server.key'),
    clientCert: pf('client.pem'),
    clientKey: pf('client.key'),
    otherCa: pf('other.pem'),
    clientCn,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
