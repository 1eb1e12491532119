#!/usr/bin/env node
// Builds wasm/turbocoap.wasm: the C core (native/sources.json) + wasm/glue*.c as
// a standalone WebAssembly module (no emscripten JS glue; ts/backend/wasm.ts
// is the loader).
//
//   node scripts/build-wasm.mjs            rebuild wasm/turbocoap.wasm
//   node scripts/build-wasm.mjs --check    rebuild into a temp file and compare
//                                          with the committed one (exit 1 on mismatch)
//   node scripts/build-wasm.mjs --out F    write F instead
//
// The build is reproducible: relative paths only, no debug info, fixed flags.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const committed = join(root, 'wasm', 'turbocoap.wasm');
const args = process.argv.slice(2);
const check = args.includes('--check');
const outIdx = args.indexOf('--out');

const sources = JSON.parse(readFileSync(join(root, 'native', 'sources.json'), 'utf8'));
const core = [...sources.core, ...sources.driver];
// The glue: exports of the codec, deframer, driver ABI and datagram driver (glue.c), of
// the client transfers (glue_client.c) and of the connection driver (glue_stream.c).
const glue = ['wasm/glue.c', 'wasm/glue_client.c', 'wasm/glue_stream.c'];
// Every function a glue file marks TCW_API is exported.
const exported = glue.flatMap((file) => {
  const names = [...readFileSync(join(root, file), 'utf8').matchAll(/^TCW_API\b[^(]*?\b(tcw_\w+)\(/gm)].map(
    (m) => '_' + m[1],
  );
  if (names.length === 0) throw new Error('build-wasm: no TCW_API functions found in ' + file);
  return names;
});

function emccVersion() {
  try {
    return execFileSync('emcc', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  } catch (e) {
    console.error('build-wasm: emcc not found (Debian: apt-get install emscripten)');
    process.exit(2);
  }
}

function build(out) {
  const flags = [
    '-O3',
    '-mbulk-memory',
    '-std=c11',
    '-Wall',
    '-Wextra',
    '-Werror',
    '-Inative/include',
    '-Inative/driver',
    `-ffile-prefix-map=${root}/=`,
    '--no-entry',
    '-sSTANDALONE_WASM=1',
    '-sALLOW_MEMORY_GROWTH=1',
    '-sINITIAL_MEMORY=327680',
    '-sTOTAL_STACK=65536',
    '-sMALLOC=emmalloc',
    '-sFILESYSTEM=0',
    '-sSUPPORT_ERRNO=0',
    '-sEXPORTED_FUNCTIONS=' + exported.join(','),
    ...core,
    ...glue,
    '-o',
    out,
  ];
  execFileSync('emcc', flags, { cwd: root, stdio: 'inherit', env: { ...process.env, SOURCE_DATE_EPOCH: '0' } });
}

console.log('build-wasm: ' + emccVersion());
if (check) {
  if (!existsSync(committed)) {
    console.error('check:wasm: wasm/turbocoap.wasm is missing; run `npm run build:wasm`');
    process.exit(1);
  }
  const dir = mkdtempSync(join(tmpdir(), 'turbocoap-wasm-'));
  try {
    const out = join(dir, 'turbocoap.wasm');
    build(out);
    const a = readFileSync(out);
    const b = readFileSync(committed);
    if (!a.equals(b)) {
      console.error(
        `check:wasm: MISMATCH — wasm/turbocoap.wasm (${b.length} bytes) differs from a fresh build ` +
          `(${a.length} bytes) of native/src + native/driver + ${glue.join(' + ')}. Run \`npm run build:wasm\` and commit the result.`,
      );
      process.exit(1);
    }
    console.log(`check:wasm: OK — wasm/turbocoap.wasm matches a fresh build (${a.length} bytes)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else {
  const target = outIdx >= 0 ? resolve(args[outIdx + 1]) : committed;
  const tmp = target + '.tmp.wasm';
  build(tmp);
  renameSync(tmp, target);
  console.log(`build-wasm: wrote ${target} (${readFileSync(target).length} bytes, exports: ${exported.length})`);
}
