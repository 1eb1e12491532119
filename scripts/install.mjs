#!/usr/bin/env node
// npm "install" script: builds the native addon (node-gyp-build: a matching prebuild, else
// node-gyp rebuild) and never fails the install when it cannot. The addon is optional: where
// it does not build (no compiler, another OS), the package serves through its WebAssembly
// backend, and this script says so in one line and exits 0. The compiler's output then goes
// to build/install.log. Shipped in the package (package.json "files").
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));

let status = 1;
let output = '';
try {
  const bin = join(dirname(require.resolve('node-gyp-build/package.json')), 'bin.js');
  const r = spawnSync(process.execPath, [bin], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  status = r.status ?? 1;
  output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`;
} catch (e) {
  output = String(e?.stack ?? e);
}

if (status === 0) {
  if (output.trim() !== '') process.stdout.write(output);
} else {
  let where = 'build/install.log';
  try {
    mkdirSync(join(root, 'build'), { recursive: true });
    writeFileSync(join(root, where), output);
  } catch {
    where = 'no log written';
  }
  console.log(`turbocoap: the native addon could not be built (${where}); the WebAssembly backend will serve.`);
}
process.exit(0);
