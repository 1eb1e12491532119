#!/usr/bin/env node
// Codec benchmark: turbocoap decode/encode (native addon and WebAssembly) against the npm
// `coap-packet` parser/generator, on the same messages, in one run. Every decoded field is read.
// Prints ops/s ± relative margin of error (Benchmark.js) and the ratio to coap-packet.
//
//   node bench/codec.mjs            # all cases
//   BENCH_MAX_TIME=2 node bench/codec.mjs   # seconds per measurement (default 1)
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

const require = createRequire(import.meta.url);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const Benchmark = require('benchmark');
const packet = require('coap-packet');
const { Codec } = require(resolve(root, 'dist/codec.js'));
const { loadNativeBackend } = require(resolve(root, 'dist/backend/native.js'));
const { loadWasmBackend } = require(resolve(root, 'dist/backend/wasm.js'));

const maxTime = Number(process.env.BENCH_MAX_TIME ?? 1);
const codecs = {
  native: new Codec(loadNativeBackend(resolve(root, 'build/Release/turbocoap.node'))),
  wasm: new Codec(loadWasmBackend()),
};

const b = (s) => new Uint8Array(Buffer.from(s));
const u = (n) => (n === 0 ? new Uint8Array(0) : n < 256 ? Uint8Array.of(n) : Uint8Array.of(n >> 8, n & 255));
const bytes = (n, f = (i) => i & 255) => Uint8Array.from({ length: n }, (_, i) => f(i));

// The same messages for both libraries: [name, turbocoap message, coap-packet packet].
const cases = [
  [
    'empty ACK',
    { type: 'ACK', messageId: 0x4444, code: '0.00', token: new Uint8Array(0), options: [], payload: new Uint8Array(0) },
  ],
  [
    'GET /sensors/temp?unit=c',
    { type: 'CON', messageId: 0x1234, code: '0.01', token: b('\x01\x02\x03\x04'),
      options: [{ number: 11, value: b('sensors') }, { number: 11, value: b('temp') },
                { number: 15, value: b('unit=c') }], payload: new Uint8Array(0) },
  ],
  [
    '2.05 JSON response, ETag + Max-Age',
    { type: 'ACK', messageId: 0x1234, code: '2.05', token: b('\x01\x02\x03\x04'),
      options: [{ number: 4, value: bytes(4, (i) => 0xa0 + i) }, { number: 12, value: u(50) },
                { number: 14, value: u(60) }],
      payload: b('{"temp":21.5,"unit":"c","ts":1732550000}') },
  ],
  [
    'Block1 PUT, 512-byte body',
    { type: 'CON', messageId: 0x2222, code: '0.03', token: bytes(8),
      options: [{ number: 11, value: b('fw') }, { number: 11, value: b('image') },
                { number: 12, value: u(42) }, { number: 27, value: Uint8Array.of(0x3d) },
                { number: 60, value: Uint8Array.of(0x10, 0x00, 0x00) }],
      payload: bytes(512) },
  ],
  [
    'Observe notification',
    { type: 'NON', messageId: 0x3333, code: '2.05', token: bytes(6),
      options: [{ number: 6, value: Uint8Array.of(0x01, 0x2c) }, { number: 12, value: u(0) }],
      payload: b('22.5') },
  ],
];

// coap-packet's own option names, as its users write them.
const NAMES = { 4: 'ETag', 6: 'Observe', 11: 'Uri-Path', 12: 'Content-Format', 14: 'Max-Age', 15: 'Uri-Query',
  27: 'Block1', 60: 'Size1' };

function toPacket(m) {
  return {
    messageId: m.messageId, code: m.code, token: Buffer.from(m.token),
    confirmable: m.type === 'CON', reset: m.type === 'RST', ack: m.type === 'ACK',
    options: m.options.map((o) => ({ name: NAMES[o.number] ?? String(o.number), value: Buffer.from(o.value) })),
    payload: Buffer.from(m.payload),
  };
}

let sink = 0;
function readTurbo(m) {
  let s = m.type.length + m.messageId + m.code.length + m.token.length + m.payload.length;
  const o = m.options;
  for (let i = 0; i < o.length; i++) s += o[i].number + o[i].value.length;
  return s;
}
function readPacket(p) {
  let s = (p.confirmable ? 1 : 0) + (p.reset ? 1 : 0) + (p.ack ? 1 : 0) + p.messageId + p.code.length +
    p.token.length + p.payload.length;
  const o = p.options;
  for (let i = 0; i < o.length; i++) s += o[i].name.length + o[i].value.length;
  return s;
}

function measure(name, fn) {
  return new Promise((done) => {
    const bench = new Benchmark(name, fn, { maxTime, minSamples: 10 });
    bench.on('complete', () => done(bench));
    bench.run();
  });
}

const rows = [];
for (const [name, msg] of cases) {
  const wire = codecs.native.encode(msg);
  const wireBuf = Buffer.from(wire);
  const pkt = toPacket(msg);
  // Same bytes from every encoder, same message from every decoder.
  const ref = Buffer.from(packet.generate(pkt)).toString('hex');
  for (const [kind, c] of Object.entries(codecs)) {
    if (Buffer.from(c.encode(msg)).toString('hex') !== ref) throw new Error(`${kind} encode differs from coap-packet: ${name}`);
    if (readTurbo(c.decode(wire)) !== readTurbo(msg)) throw new Error(`${kind} decode mismatch: ${name}`);
  }
  const r = { name };
  r.parse = await measure('coap-packet parse', () => { sink += readPacket(packet.parse(wireBuf)); });
  r.generate = await measure('coap-packet generate', () => { sink += packet.generate(pkt).length; });
  for (const [kind, c] of Object.entries(codecs)) {
    r[`${kind}.decode`] = await measure(`${kind} decode`, () => { sink += readTurbo(c.decode(wire)); });
    r[`${kind}.encode`] = await measure(`${kind} encode`, () => { sink += c.encode(msg).length; });
  }
  rows.push(r);
}

const fmt = (bm) => `${Math.round(bm.hz).toLocaleString('en-US').padStart(11)} ±${bm.stats.rme.toFixed(1)}%`;
const ratio = (a, b) => `${(a.hz / b.hz).toFixed(2)}x`;
console.log(`\nturbocoap codec vs coap-packet ${require('coap-packet/package.json').version} ` +
  `(node ${process.version}, ops/s, higher is better; ratio = turbocoap ops/s / coap-packet ops/s)\n`);
console.log('| message | op | coap-packet | native | wasm | native ratio | wasm ratio |');
console.log('|---|---|---:|---:|---:|---:|---:|');
let ok = true;
for (const r of rows) {
  for (const [op, peer] of [['decode', 'parse'], ['encode', 'generate']]) {
    const n = r[`native.${op}`], w = r[`wasm.${op}`], p = r[peer];
    console.log(`| ${r.name} | ${op} | ${fmt(p)} | ${fmt(n)} | ${fmt(w)} | ${ratio(n, p)} | ${ratio(w, p)} |`);
    // Targets: decode at least as fast as coap-packet's parse; encode at least twice as fast.
    const need = op === 'decode' ? 1 : 2;
    if (n.hz / p.hz < need || w.hz / p.hz < need) ok = false;
  }
}
console.log(`\ntargets (decode >= 1x parse, encode >= 2x generate, both backends): ${ok ? 'met' : 'NOT met'}`);
if (sink === 42) console.log('');
