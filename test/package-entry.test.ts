/**
 * The package as consumers load it: `require('turbocoap')`, `import ... from
 * 'turbocoap'` and the "browser" export condition, from child processes, both
 * by self-reference from the package root and from a consumer directory with
 * node_modules/turbocoap linked to it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasNative, root } from './support/backends';

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

function node(cwd: string, args: string[], env: Record<string, string> = {}) {
  const e = { ...process.env, ...env };
  if (!('TURBOCOAP_BACKEND' in env)) delete e.TURBOCOAP_BACKEND;
  const r = spawnSync(process.execPath, args, { cwd, env: e, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout.trim();
}

const consumer = mkdtempSync(join(tmpdir(), 'turbocoap-consumer-'));
mkdirSync(join(consumer, 'node_modules'));
symlinkSync(root, join(consumer, 'node_modules', 'turbocoap'));
writeFileSync(join(consumer, 'package.json'), '{"name":"consumer","private":true}');
afterAll(() => rmSync(consumer, { recursive: true, force: true }));

const GET = '[0x40,1,0x12,0x34,0xb4,0x74,0x65,0x6d,0x70]';

const cjs = `
const t = require('turbocoap');
const m = t.decode(Uint8Array.from(${GET}));
let err; try { t.decode(Uint8Array.from([0x4f,1,0,0])); } catch (e) { err = e; }
console.log(JSON.stringify({ kind: t.backend.kind, code: m.code, path: new TextDecoder().decode(m.options[0].value),
  parse: err instanceof t.CoapParseError && err instanceof t.CoapError && err.code,
  file: require.resolve('turbocoap') }));`;

const esm = `
import { decode, CoapParseError, backend, encode } from 'turbocoap';
import * as ns from 'turbocoap';
import { createRequire } from 'node:module';
const req = createRequire(import.meta.url)('turbocoap');
const m = decode(Uint8Array.from(${GET}));
let err; try { decode(Uint8Array.from([0x4f,1,0,0])); } catch (e) { err = e; }
console.log(JSON.stringify({ kind: backend.kind, code: m.code,
  sameClass: CoapParseError === req.CoapParseError && err instanceof req.CoapParseError,
  sameFn: decode === req.decode && encode === req.encode,
  names: Object.keys(ns).filter((k) => k !== 'default').sort().join(',') === Object.keys(req).sort().join(',') }));`;

describe.each([
  ['package root (self-reference)', root],
  ['consumer with node_modules/turbocoap', consumer],
])('from the %s', (_label, cwd) => {
  it('require() works', () => {
    const out = JSON.parse(node(cwd, ['-e', cjs]));
    // The default backend: native where the addon was built, else the WASM fallback.
    expect(out).toMatchObject({ kind: hasNative ? 'native' : 'wasm', code: '0.01', path: 'temp', parse: 'RESERVED_TKL' });
    expect(out.file).toBe(join(root, 'dist', 'index.js'));
  });

  it('import works and shares the CommonJS module instance', () => {
    const out = JSON.parse(node(cwd, ['--input-type=module', '-e', esm]));
    expect(out).toEqual({ kind: hasNative ? 'native' : 'wasm', code: '0.01', sameClass: true, sameFn: true, names: true });
  });

  it('import with TURBOCOAP_BACKEND=wasm', () => {
    const out = JSON.parse(node(cwd, ['--input-type=module', '-e', esm], { TURBOCOAP_BACKEND: 'wasm' }));
    expect(out.kind).toBe('wasm');
    expect(out.code).toBe('0.01');
  });

  it('the "browser" condition loads the WASM-only bundle', () => {
    const out = node(cwd, [
      '--conditions=browser',
      '--input-type=module',
      '-e',
      `import * as t from 'turbocoap'; const m = t.decode(Uint8Array.from(${GET}));
       console.log(t.backend.kind, m.code, import.meta.resolve('turbocoap'));`,
    ]);
    const [kind, code, url] = out.split(' ');
    expect(kind).toBe('wasm');
    expect(code).toBe('0.01');
    expect(url.endsWith('/dist/turbocoap.browser.mjs')).toBe(true);
  });
});

describe('package.json', () => {
  it('points at built files', () => {
    expect(pkg.name).toBe('turbocoap');
    expect(pkg.type).toBe('commonjs');
    const e = pkg.exports['.'];
    for (const f of [pkg.main, pkg.types, e.types, e.import, e.require, e.browser.default, e.browser.types]) {
      expect(existsSync(join(root, f)), f).toBe(true);
    }
  });

  it('the browser bundle has no Node or native dependencies and inlines the module', () => {
    const src = readFileSync(join(root, 'dist', 'turbocoap.browser.mjs'), 'utf8');
    expect(src).not.toMatch(/\brequire\(|node-gyp-build|process\.env|from ['"]node:/);
    const wasm = readFileSync(join(root, 'wasm', 'turbocoap.wasm')).toString('base64');
    expect(src).toContain(wasm);
  });
});

describe('npm pack', () => {
  // What `npm pack` would ship (without running prepare: dist/ is checked above).
  const packed = ((): Set<string> => {
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`npm pack --dry-run failed (${r.status}):\n${r.stderr}`);
    return new Set((JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  })();

  it('ships the scripts npm runs on install, the LICENSE and the README', () => {
    for (const s of ['install', 'prepare']) {
      const files = (pkg.scripts[s] as string).match(/scripts\/\S+\.mjs/g) ?? [];
      expect(files.length, `${s}: ${pkg.scripts[s]}`).toBeGreaterThan(0);
      for (const f of files) expect(packed.has(f), `${s} runs ${f}`).toBe(true);
    }
    for (const f of ['LICENSE', 'README.md', 'package.json', 'binding.gyp', 'wasm/turbocoap.wasm']) expect(packed.has(f), f).toBe(true);
    expect(readFileSync(join(root, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} turbocoap contributors\n/);
    expect(pkg.license).toBe('MIT');
  });

  it('ships every C file the addon build compiles and every header they include', () => {
    const gyp = readFileSync(join(root, 'binding.gyp'), 'utf8');
    const sources = new Set<string>([
      ...Object.values(JSON.parse(readFileSync(join(root, 'native', 'sources.json'), 'utf8')) as Record<string, string[]>).flat(),
      ...(gyp.match(/"native\/[^"]+\.(?:c|cc)"/g) ?? []).map((s) => s.slice(1, -1)),
    ]);
    const includeDirs = (gyp.match(/"native\/[^"]+"/g) ?? []).map((s) => s.slice(1, -1)).filter((d) => !/\.\w+$/.test(d));
    const seen = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      expect(packed.has(file), `${file} is built but not in package.json "files"`).toBe(true);
      for (const m of readFileSync(join(root, file), 'utf8').matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) {
        const inc = m[1]!;
        const found = [join(file, '..', inc), ...includeDirs.map((d) => join(d, inc))].find((c) => existsSync(join(root, c)));
        // Generated headers (none today) would live outside the tree: a miss is an error too.
        expect(found, `${file} includes "${inc}", not found`).toBeDefined();
        visit(found!);
      }
    };
    for (const s of sources) visit(s);
    expect(seen.size).toBeGreaterThan(sources.size);
  });
});
