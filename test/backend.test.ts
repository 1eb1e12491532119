/**
 * Native vs WASM parity, WASM memory growth, and backend selection
 * (TURBOCOAP_BACKEND) in child processes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, cpSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Codec, CoapMessage } from '../ts/codec';
import { CoapParseError } from '../ts/errors';
import type { Transport } from '../ts/codes';
import { hasNative, hex, native, prng, root, unhex, wasm } from './support/backends';

type Outcome = string;

function outcome(c: Codec, input: Uint8Array, transport: Transport): Outcome {
  let m: CoapMessage;
  try {
    m = c.decode(input, { transport });
  } catch (e) {
    if (!(e instanceof CoapParseError)) throw e;
    return 'error ' + e.code;
  }
  return JSON.stringify({
    type: m.type,
    messageId: m.messageId,
    code: m.code,
    token: hex(m.token),
    options: m.options.map((o) => [o.number, hex(o.value)]),
    payload: hex(m.payload),
  });
}

const vectors: { hex: string; transport: Transport }[] = JSON.parse(
  readFileSync(join(root, 'test', 'vectors', 'codec.json'), 'utf8'),
).vectors;

describe.skipIf(!hasNative)('native vs WASM parity', () => {
  it('same result or same error on 20k random and mutated inputs', () => {
    const rnd = prng(20240601);
    const seeds = vectors.map((v) => [unhex(v.hex), v.transport] as const).filter(([b]) => b.length > 0);
    const errors = new Set<string>();
    let decoded = 0;
    for (let k = 0; k < 20000; k++) {
      let input: Uint8Array;
      let transport: Transport;
      if (k % 4 === 0) {
        input = Uint8Array.from({ length: (rnd() * 48) | 0 }, () => (rnd() * 256) | 0);
        transport = (['udp', 'tcp', 'ws'] as Transport[])[(rnd() * 3) | 0];
      } else {
        const [seed, t] = seeds[(rnd() * seeds.length) | 0];
        input = seed.slice();
        transport = rnd() < 0.9 ? t : (['udp', 'tcp', 'ws'] as Transport[])[(rnd() * 3) | 0];
        const r = rnd();
        if (r < 0.6) {
          for (let m = 1 + ((rnd() * 3) | 0); m > 0; m--) input[(rnd() * input.length) | 0] = (rnd() * 256) | 0;
        } else if (r < 0.8) {
          input = input.subarray(0, (rnd() * input.length) | 0);
        } else {
          const extra = Uint8Array.from({ length: 1 + ((rnd() * 8) | 0) }, () => (rnd() * 256) | 0);
          const grown = new Uint8Array(input.length + extra.length);
          grown.set(input);
          grown.set(extra, input.length);
          input = grown;
        }
      }
      const a = outcome(native, input, transport);
      const b = outcome(wasm, input, transport);
      if (a !== b) throw new Error(`mismatch on ${transport} ${hex(input)}: native ${a} / wasm ${b}`);
      if (a.startsWith('error ')) errors.add(a);
      else decoded++;
    }
    expect(decoded).toBeGreaterThan(2000);
    // The mutations reach most of the parser's error paths.
    expect(errors.size).toBeGreaterThanOrEqual(10);
  });

  it('encodes identically', () => {
    const rnd = prng(7);
    for (let k = 0; k < 2000; k++) {
      const options = Array.from({ length: (rnd() * 6) | 0 }, () => ({
        number: (rnd() * 400) | 0,
        value: Uint8Array.from({ length: (rnd() * 20) | 0 }, () => (rnd() * 256) | 0),
      }));
      const msg: CoapMessage = {
        type: 'NON',
        messageId: k,
        code: '2.05',
        token: Uint8Array.from({ length: (rnd() * 9) | 0 }, () => k & 0xff),
        options,
        payload: new Uint8Array((rnd() * 30) | 0).fill(5),
      };
      const t = (['udp', 'tcp', 'ws'] as Transport[])[k % 3];
      expect(hex(wasm.encode(msg, { transport: t }))).toBe(hex(native.encode(msg, { transport: t })));
    }
  });

  it('agrees on error names', () => {
    for (let i = -1; i >= -16; i--) expect(wasm.errorName(i)).toBe(native.errorName(i));
    expect(native.errorName(-3)).toBe('RESERVED_TKL');
    expect(native.backend.errorName(-99)).toBe('UNKNOWN');
    expect(wasm.backend.errorName(-99)).toBe('UNKNOWN');
  });
});

describe('WASM memory growth', () => {
  it('re-creates views when memory grows and keeps working', () => {
    const be = wasm.backend;
    const small = unhex('40017d34bb74656d7065726174757265');
    const before = be.table;
    expect(wasm.decode(small).code).toBe('0.01');
    // 8 MiB input: malloc grows linear memory, replacing its buffer.
    const big = new Uint8Array(8 << 20);
    big.set([0x60, 0x45, 0x12, 0x34, 0xff]);
    const m = wasm.decode(big);
    expect(m.payload.length).toBe(big.length - 5);
    const after = be.table;
    expect(after.buffer).not.toBe(before.buffer);
    expect(before.byteLength).toBe(0); // the old view was detached
    expect(wasm.decode(small).options[0].number).toBe(11);
    expect(hex(wasm.encode(wasm.decode(small)))).toBe(hex(small));
  });
});

describe.skipIf(!hasNative)('worker threads', () => {
  it('each thread gets its own native scratch', () => {
    const code = `
      const { Worker, isMainThread, parentPort } = require('node:worker_threads');
      const t = require(${JSON.stringify(join(root, 'dist', 'index.js'))});
      const run = (id) => {
        let ok = 0;
        for (let i = 0; i < 20000; i++) {
          const wire = t.encode({ type: 'CON', messageId: (id * 1000 + i) & 0xffff, code: '0.01', token: Uint8Array.of(id, i & 255), options: [{ number: 11, value: Uint8Array.of(id) }], payload: new Uint8Array(0) });
          const m = t.decode(wire);
          if (m.token[0] === id && m.options[0].value[0] === id && m.messageId === ((id * 1000 + i) & 0xffff)) ok++;
        }
        return t.backend.kind + ':' + ok;
      };
      const workers = [1, 2, 3].map((id) => new Promise((resolve, reject) => {
        const w = new Worker(__filename_code, { eval: true, workerData: id });
        w.on('message', resolve); w.on('error', reject);
      }));
      Promise.all([run(0), ...workers]).then((r) => console.log(r.join(' ')));
    `;
    const worker = `
      const { parentPort, workerData } = require('node:worker_threads');
      const t = require(${JSON.stringify(join(root, 'dist', 'index.js'))});
      let ok = 0;
      for (let i = 0; i < 20000; i++) {
        const id = workerData;
        const wire = t.encode({ type: 'CON', messageId: (id * 1000 + i) & 0xffff, code: '0.01', token: Uint8Array.of(id, i & 255), options: [{ number: 11, value: Uint8Array.of(id) }], payload: new Uint8Array(0) });
        const m = t.decode(wire);
        if (m.token[0] === id && m.options[0].value[0] === id && m.messageId === ((id * 1000 + i) & 0xffff)) ok++;
      }
      parentPort.postMessage(t.backend.kind + ':' + ok);
    `;
    const e = { ...process.env };
    delete e.TURBOCOAP_BACKEND;
    const r = spawnSync(process.execPath, ['-e', `const __filename_code = ${JSON.stringify(worker)};` + code], {
      env: e,
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('native:20000 native:20000 native:20000 native:20000');
  });
});

describe('backend selection (child processes)', () => {
  const script =
    "const t = require(process.argv[1]); console.log(t.backend.kind); " +
    "console.log(t.decode(Uint8Array.from([0x40,1,0,1])).code)";

  function run(dir: string, env: Record<string, string | undefined>) {
    const e = { ...process.env };
    delete e.TURBOCOAP_BACKEND;
    Object.assign(e, env);
    return spawnSync(process.execPath, ['-e', script, join(dir, 'dist', 'index.js')], { env: e, encoding: 'utf8' });
  }

  it.skipIf(!hasNative)('picks native by default when the addon loads', () => {
    const r = run(root, {});
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual(['native', '0.01']);
  });

  it('TURBOCOAP_BACKEND=wasm forces WASM', () => {
    const r = run(root, { TURBOCOAP_BACKEND: 'wasm' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual(['wasm', '0.01']);
  });

  it.skipIf(!hasNative)('TURBOCOAP_BACKEND=native forces native', () => {
    const r = run(root, { TURBOCOAP_BACKEND: 'native' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('native');
  });

  it('rejects a bogus TURBOCOAP_BACKEND', () => {
    const r = run(root, { TURBOCOAP_BACKEND: 'bogus' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('invalid TURBOCOAP_BACKEND="bogus"');
  });

  describe('where the addon cannot load', () => {
    // A copy of the package without build/ or prebuilds/.
    const dir = mkdtempSync(join(tmpdir(), 'turbocoap-noaddon-'));
    cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), readFileSync(join(root, 'package.json')));
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('falls back to WASM by default', () => {
      const r = run(dir, {});
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.split('\n').slice(0, 2)).toEqual(['wasm', '0.01']);
    });

    it('TURBOCOAP_BACKEND=native throws, saying why', () => {
      const r = run(dir, { TURBOCOAP_BACKEND: 'native' });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('TURBOCOAP_BACKEND=native but the native addon cannot be loaded');
      expect(r.stderr).toMatch(/No native build was found/);
    });

    it('the CLI says which backend runs and why', () => {
      const e = { ...process.env };
      delete e.TURBOCOAP_BACKEND;
      const r = spawnSync(process.execPath, [join(dir, 'dist', 'cli.js'), 'backend'], { env: e, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe('wasm\n');
      expect(r.stderr).toMatch(/^turbocoap: the native addon did not load \(No native build was found.*\); WebAssembly serves\n$/);
      const v = spawnSync(process.execPath, [join(dir, 'dist', 'cli.js'), '--version'], { env: e, encoding: 'utf8' });
      expect(v.stdout).toMatch(/^turbocoap \d+\.\d+\.\d+.* \(wasm backend\)\n$/);
      const forced = spawnSync(process.execPath, [join(dir, 'dist', 'cli.js'), 'backend'], { env: { ...e, TURBOCOAP_BACKEND: 'native' }, encoding: 'utf8' });
      expect([forced.status, forced.stdout]).toEqual([1, '']);
      expect(forced.stderr).toMatch(/^turbocoap: TURBOCOAP_BACKEND=native but the native addon cannot be loaded: No native build was found/);
    });
  });

  describe('where the addon is broken', () => {
    // A copy of the package whose build/Release/turbocoap.node is not a loadable library.
    const dir = mkdtempSync(join(tmpdir(), 'turbocoap-badaddon-'));
    cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), readFileSync(join(root, 'package.json')));
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    mkdirSync(join(dir, 'build', 'Release'), { recursive: true });
    writeFileSync(join(dir, 'build', 'Release', 'turbocoap.node'), 'not an ELF file\n');
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('falls back to WASM by default, and a UDP server runs on it', () => {
      const e = { ...process.env };
      delete e.TURBOCOAP_BACKEND;
      const code =
        `const t = require(${JSON.stringify(join(dir, 'dist', 'index.js'))});` +
        "const s = t.createServer(() => ({ code: '2.05', payload: 'ok' }));" +
        "s.listen({ port: 0, host: '127.0.0.1' }).then(async () => {" +
        "  const r = await t.request('coap://127.0.0.1:' + s.address().port + '/');" +
        "  console.log(t.backend.kind, s.backend, r.code, r.text());" +
        '  await s.close(); await t.globalAgent.close();' +
        '});';
      const r = spawnSync(process.execPath, ['-e', code], { env: e, encoding: 'utf8', timeout: 20_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('wasm wasm 2.05 ok');
    });

    it('TURBOCOAP_BACKEND=native throws, saying why', () => {
      const r = run(dir, { TURBOCOAP_BACKEND: 'native' });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('TURBOCOAP_BACKEND=native but the native addon cannot be loaded');
    });
  });

  it.skipIf(!hasNative)('node-gyp-build finds the local build', () => {
    const out = execFileSync(process.execPath, ['-p', `require.resolve('node-gyp-build') && typeof require('node-gyp-build')(${JSON.stringify(root)}).decode`], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(out.trim()).toBe('function');
  });
});
