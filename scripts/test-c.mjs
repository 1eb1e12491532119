#!/usr/bin/env node
// `npm test`, first half: the C unit tests, plain and under ASan + UBSan (make -C native test
// asan), and the TLS record layer's (make -C native tls-test). They need make and a C compiler.
// Outside CI, where either is missing, they are skipped with a one-line reason; with CI set they
// are required (make then fails loudly).
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ci = ((v) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false')(process.env.CI);

/** Whether `cmd --version` runs and exits 0 (so CC=false counts as no compiler). */
function works(cmd) {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore', shell: false });
  return r.status === 0;
}

const cc = (process.env.CC ?? '').trim() || 'cc';
const missing = [works('make') ? '' : 'make', works(cc.split(/\s+/)[0]) ? '' : `a C compiler (${cc})`].filter((s) => s !== '');
if (missing.length > 0 && !ci) {
  console.log(`test:c: SKIPPED (CI is not set): ${missing.join(' and ')} not available; the C unit tests need them`);
  process.exit(0);
}
// The OpenSSL record layer (native/driver/tls.c) is tested against the system's libssl; outside
// CI a machine without its headers (libssl-dev) skips that part with a one-line reason.
const hasLibssl = spawnSync(cc.split(/\s+/)[0], ['-E', '-x', 'c', '-'], { input: '#include <openssl/ssl.h>\n', stdio: ['pipe', 'ignore', 'ignore'] }).status === 0;
const targets = ['test', 'asan'];
if (hasLibssl || ci) targets.push('tls-test');
else console.log('test:c: TLS record layer tests SKIPPED (CI is not set): OpenSSL headers (libssl-dev) not found');
for (const target of targets) {
  const r = spawnSync('make', ['-C', join(root, 'native'), target], { stdio: 'inherit' });
  if (r.error !== undefined) console.error(`test:c: cannot run make (CI requires the C tests): ${r.error.message}`);
  if (r.status !== 0) process.exit(r.status ?? 1);
}
