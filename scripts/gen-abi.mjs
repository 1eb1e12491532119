#!/usr/bin/env node
// Generates ts/driver/abi.ts from the one declaration of the driver ABI: the X-macro lists of
// native/driver/abi.h and TC_ERRORS in native/include/turbocoap.h (as llhttp generates its
// constants). The output holds the record word indices, error codes and names, config word
// indices, stats byte offsets, and ABI_LAYOUT / ABI_HASH: the table native/driver/abi.c
// builds from the same lists with the compiler's own enum values, offsetof and sizeof, which
// the TypeScript side compares with what each backend reports.
//
//   node scripts/gen-abi.mjs           rewrite ts/driver/abi.ts
//   node scripts/gen-abi.mjs --check   exit 1 if ts/driver/abi.ts is not what it would write
//   node scripts/gen-abi.mjs --print   write it to stdout
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ABI_H = 'native/driver/abi.h';
const CORE_H = 'native/include/turbocoap.h';
const OUT = 'ts/driver/abi.ts';

function fail(msg) {
  console.error(`gen-abi: ${msg}`);
  process.exit(1);
}

/** The X(...) argument strings of `#define NAME(X) \ ...` in text (comments removed). */
function list(text, name, file) {
  const src = text.replace(/\/\*[\s\S]*?\*\//g, ' ');
  const m = new RegExp(`^#define ${name}\\(X\\)[ \\t]*\\\\\\n((?:.*\\\\\\n)*.*)$`, 'm').exec(src);
  if (m === null) fail(`${file}: no list ${name}(X)`);
  const body = m[1];
  const out = [];
  // arguments: identifiers, numbers, member designators and one string literal
  const re = /X\(((?:[^()"]|"(?:[^"\\]|\\.)*")*)\)/g;
  let x;
  while ((x = re.exec(body)) !== null) {
    const args = [];
    const argRe = /\s*("(?:[^"\\]|\\.)*"|[^,]+)\s*(?:,|$)/gy;
    let a;
    while (argRe.lastIndex < x[1].length && (a = argRe.exec(x[1])) !== null) args.push(a[1].trim());
    out.push(args);
  }
  if (out.length === 0) fail(`${file}: ${name} is empty`);
  return out;
}

function int(s, where) {
  const v = Number(s);
  if (!Number.isInteger(v)) fail(`${where}: ${s} is not an integer literal`);
  return v;
}

function ident(s, where) {
  if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(s)) fail(`${where}: bad name ${s}`);
  return s;
}

const abiH = readFileSync(join(root, ABI_H), 'utf8');
const coreH = readFileSync(join(root, CORE_H), 'utf8');

const core = list(abiH, 'TCA_CORE_CONSTANTS', ABI_H).map(([n, v]) => [ident(n, 'core constant'), int(v, n)]);
const consts = list(abiH, 'TCA_CONSTANTS', ABI_H).map(([n, v]) => [ident(n, 'constant'), int(v, n)]);
const errors = list(coreH, 'TC_ERRORS', CORE_H).map(([n, v, doc]) => [ident(n, 'error'), int(v, n), JSON.parse(doc)]);
const records = [
  ['RX', 'TCA_RX'],
  ['TX_RESPOND', 'TCA_TX_RESPOND'],
  ['TX_REQUEST', 'TCA_TX_REQUEST'],
  ['TX_SMALL', 'TCA_TX_SMALL'],
  ['TX_PING', 'TCA_TX_PING'],
  ['TX_NOTIFY', 'TCA_TX_NOTIFY'],
  ['WASM_INFO', 'TCA_WASM_INFO'],
  ['WASM_SEND', 'TCA_WASM_SEND'],
  ['WASM_STREAM', 'TCA_WASM_STREAM'],
  ['WASM_OUT', 'TCA_WASM_OUT'],
].map(([prefix, name]) => {
  let at = 0;
  const fields = list(abiH, name, ABI_H).map(([n, w]) => {
    const f = [ident(n, name), at, int(w, n)];
    at += f[2];
    return f;
  });
  return { prefix, fields, words: at };
});
const epConfig = list(abiH, 'TCA_EP_CONFIG', ABI_H).map(([f]) => ident(f, 'TCA_EP_CONFIG'));
const srvConfig = list(abiH, 'TCA_SRV_CONFIG', ABI_H).map(([f]) => ident(f, 'TCA_SRV_CONFIG'));
const connConfig = list(abiH, 'TCA_CONN_CONFIG', ABI_H).map(([f]) => ident(f, 'TCA_CONN_CONFIG'));
const streamLimits = list(abiH, 'TCA_STREAM_LIMITS', ABI_H).map(([f]) => ident(f, 'TCA_STREAM_LIMITS'));
const statsList = (names) =>
  names.map((name) =>
    list(abiH, name, ABI_H).map(([t, f]) => {
      if (t !== 'U64' && t !== 'U32') fail(`${name}: type ${t} is not U64 or U32`);
      return [ident(f, name), t === 'U64' ? 8 : 4];
    }),
  );
const stats = statsList(['TCA_EP_STATS', 'TCA_SRV_STATS', 'TCA_DRIVER_STATS']);
const streamStats = statsList(['TCA_STREAM_STATS', 'TCA_SRV_STATS', 'TCA_STREAM_HOST_STATS']);
const seed = /^#define TCA_SEED_BYTES (\d+)u?$/m.exec(abiH);
if (seed === null) fail(`${ABI_H}: no TCA_SEED_BYTES`);
const seedBytes = Number(seed[1]);

// ------------------------------------------------------------------- consistency
const errCount = core.find(([n]) => n === 'ERROR_COUNT');
if (errCount === undefined || errCount[1] !== errors.length) fail('ERROR_COUNT does not count TC_ERRORS');
errors.forEach(([n, v], i) => {
  if (v !== -(i + 1)) fail(`TC_ERRORS: ${n} is ${v}, expected ${-(i + 1)} (dense, in order)`);
});
const seen = new Set();
function unique(name) {
  if (seen.has(name)) fail(`duplicate TypeScript name ${name}`);
  seen.add(name);
  return name;
}

// ------------------------------------------------------------------ stats layout (C rules)
const align = (n, a) => Math.ceil(n / a) * a;
function structLayout(fields) {
  let at = 0;
  let max = 1;
  const offs = fields.map(([f, size]) => {
    at = align(at, size);
    const o = at;
    at += size;
    max = Math.max(max, size);
    return [f, o, size];
  });
  return { offs, size: align(at, max), align: max };
}
/** A struct of the lists' structs in order: [fields [name, offset, size]], total size. */
function nestedLayout(lists) {
  let base = 0;
  let maxAlign = 1;
  const fields = [];
  for (const p of lists.map(structLayout)) {
    base = align(base, p.align);
    for (const [f, o, size] of p.offs) fields.push([f, base + o, size]);
    base += p.size;
    maxAlign = Math.max(maxAlign, p.align);
  }
  return { fields, bytes: align(base, maxAlign) };
}
const { fields: statFields, bytes: statsBytes } = nestedLayout(stats);
const { fields: streamStatFields, bytes: streamStatsBytes } = nestedLayout(streamStats);

// ------------------------------------------------------------------- the layout table
const layout = [
  ...core.map(([, v]) => v),
  ...consts.map(([, v]) => v),
  ...errors.map(([, v]) => v),
  ...records.flatMap((r) => [...r.fields.map(([, at]) => at), r.words]),
  ...epConfig.map((_, i) => i),
  epConfig.length,
  ...srvConfig.map((_, i) => i),
  srvConfig.length,
  ...connConfig.map((_, i) => i),
  connConfig.length,
  ...streamLimits.map((_, i) => i),
  streamLimits.length,
  ...streamStatFields.flatMap(([, o, size]) => [o, size]),
  streamStatsBytes,
  ...statFields.flatMap(([, o, size]) => [o, size]),
  statsBytes,
  seedBytes,
].map((v) => v >>> 0);
let hash = 2166136261;
for (const w of layout) {
  for (let k = 0; k < 4; k++) {
    hash ^= (w >>> (8 * k)) & 0xff;
    hash = Math.imul(hash, 16777619) >>> 0;
  }
}

// ------------------------------------------------------------------------- output
const upper = (f) => f.replace(/\./g, '_').toUpperCase();
const L = [];
const c = (name, value, doc) => {
  if (doc !== undefined) L.push(`/** ${doc} */`);
  L.push(`export const ${unique(name)} = ${value};`);
};
L.push(
  '/**',
  ` * The driver ABI: record layouts, error codes, config word order and stats offsets.`,
  ` * GENERATED by scripts/gen-abi.mjs from ${ABI_H} and TC_ERRORS in ${CORE_H}.`,
  ' * DO NOT EDIT: change the C lists and run `node scripts/gen-abi.mjs`.',
  ' *',
  ' * @internal',
  ' */',
  '/* eslint-disable */',
  '',
  '// Constants of the core',
);
for (const [n, v] of core) c(n, v);
L.push('', '// Constants of the records');
for (const [n, v] of consts) c(n, v >= 256 ? '0x' + v.toString(16) : v);
L.push('', '// Error codes (TC_E_*)');
for (const [n, v, doc] of errors) c(`E_${n}`, v, doc);
L.push(
  '/** Error names, index -code - 1 (tc_error_name). */',
  `export const ERROR_NAMES: readonly string[] = [${errors.map(([n]) => `'${n}'`).join(', ')}];`,
);
for (const r of records) {
  L.push('', `// ${r.prefix} record: word indices`);
  for (const [n, at, w] of r.fields) c(`${r.prefix}_${n}`, at, w > 1 ? `${w} words` : undefined);
  c(`${r.prefix}_WORDS`, r.words, r.prefix.startsWith('WASM') ? 'words' : 'words before the option triples');
}
L.push('', '// Driver config: tc_ep_config words, then tc_srv_config words');
epConfig.forEach((f, i) => c(`EPC_${upper(f)}`, i));
c('EP_CONFIG_WORDS', epConfig.length);
srvConfig.forEach((f, i) => c(`SRVC_${upper(f)}`, epConfig.length + i));
c('SRV_CONFIG_WORDS', srvConfig.length);
c('CONFIG_WORDS', epConfig.length + srvConfig.length);
c('SEED_BYTES', seedBytes, 'seed bytes a driver takes: 32 for tc_ep, 16 for tc_srv');
L.push(
  '',
  '// Stream config (what JS hands a stream host): tc_conn_config words, then tc_srv_config words,',
  '// then tcs_limits words. CONNC_* / SLIM_* index their block; tc_srv_config word SRVC_X is at',
  '// STREAM_CONFIG_SRV + SRVC_X - EP_CONFIG_WORDS.',
);
connConfig.forEach((f, i) => c(`CONNC_${upper(f)}`, i));
c('CONN_CONFIG_WORDS', connConfig.length);
streamLimits.forEach((f, i) => c(`SLIM_${upper(f)}`, i));
c('STREAM_LIMITS_WORDS', streamLimits.length);
c('STREAM_CONFIG_CONN', 0);
c('STREAM_CONFIG_SRV', connConfig.length);
c('STREAM_CONFIG_LIMITS', connConfig.length + srvConfig.length);
c('STREAM_CONFIG_WORDS', connConfig.length + srvConfig.length + streamLimits.length);
L.push('', '// Stream host stats (tcs_host_stats): byte offsets; 64-bit fields are listed in STREAM_STATS_U64');
for (const [f, o] of streamStatFields) c(`SST_${upper(f)}`, o);
c('STREAM_STATS_BYTES', streamStatsBytes);
L.push(
  '/** Byte offsets of the 64-bit stream stats fields. */',
  `export const STREAM_STATS_U64: readonly number[] = [${streamStatFields.filter(([, , s]) => s === 8).map(([, o]) => o).join(', ')}];`,
);
L.push('', '// Stats (tcd_stats): byte offsets; 64-bit fields are listed in STATS_U64');
for (const [f, o] of statFields) c(`ST_${upper(f)}`, o);
c('STATS_BYTES', statsBytes);
L.push(
  '/** Byte offsets of the 64-bit stats fields. */',
  `export const STATS_U64: readonly number[] = [${statFields.filter(([, , s]) => s === 8).map(([, o]) => o).join(', ')}];`,
);
L.push(
  '',
  '/** The layout table native/driver/abi.c compiles (tca_layout); both backends report theirs. */',
  'export const ABI_LAYOUT: readonly number[] = [',
  ...Array.from({ length: Math.ceil(layout.length / 16) }, (_, i) => '  ' + layout.slice(16 * i, 16 * i + 16).join(', ') + ','),
  '];',
  '/** FNV-1a of ABI_LAYOUT (tca_hash). */',
  `export const ABI_HASH = 0x${hash.toString(16).padStart(8, '0')};`,
  '',
);
const text = L.join('\n');

const args = process.argv.slice(2);
const out = join(root, OUT);
if (args.includes('--print')) process.stdout.write(text);
else if (args.includes('--check')) {
  let cur = '';
  try {
    cur = readFileSync(out, 'utf8');
  } catch {
    /* missing */
  }
  if (cur !== text) fail(`${OUT} is out of date with ${ABI_H} / ${CORE_H}: run \`node scripts/gen-abi.mjs\` and commit it`);
  console.log(`gen-abi: ${OUT} is current (ABI ${text.match(/ABI_HASH = (0x[0-9a-f]+)/)[1]}, ${layout.length} layout words)`);
} else {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, text);
  console.log(`gen-abi: wrote ${OUT} (${layout.length} layout words)`);
}
