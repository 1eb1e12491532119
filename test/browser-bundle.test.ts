/**
 * dist/turbocoap.browser.mjs and its declarations (dist/turbocoap.browser.d.mts, reached through
 * the package's "browser" export condition): the declarations export exactly the values the
 * bundle exports, and a browser project (lib DOM, no @types/node, skipLibCheck off) typechecks
 * against them. The bundle holds no Node built-ins (scripts/build.mjs fails the build on one).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { noNodeBuiltinsPlugin } from '../scripts/lib/browser-bundle.mjs';
import { EventEmitter } from '../ts/events-browser';
import { root } from './support/backends';

const bundle = join(root, 'dist', 'turbocoap.browser.mjs');
/** The bundle's export names, as Node's ESM loader sees them. */
const names: string[] = JSON.parse(
  execFileSync(process.execPath, ['--input-type=module', '-e', `import * as t from ${JSON.stringify(bundle)}; console.log(JSON.stringify(Object.keys(t)));`], {
    encoding: 'utf8',
  }),
);

const dir = mkdtempSync(join(tmpdir(), 'turbocoap-browser-types-'));
mkdirSync(join(dir, 'node_modules'));
symlinkSync(root, join(dir, 'node_modules', 'turbocoap'), 'dir');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** tsc on `code` (check.ts) as a browser project importing 'turbocoap'; its output, '' when clean. */
function tsc(code: string): string {
  writeFileSync(join(dir, 'check.ts'), code);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        module: 'preserve',
        moduleResolution: 'bundler',
        customConditions: ['browser'],
        lib: ['ES2022', 'DOM', 'DOM.Iterable', 'DOM.AsyncIterable'],
        types: [],
        noEmit: true,
        skipLibCheck: false,
      },
      files: ['check.ts'],
    }),
  );
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8' });
  return (r.stdout + r.stderr).trim();
}

describe('browser bundle declarations', () => {
  it('the bundle exports the client API and the codec, and no server', () => {
    for (const n of ['request', 'observe', 'connect', 'Router', 'CoapConnection', 'Agent', 'Observation', 'IncomingResponse', 'decode', 'encode', 'Deframer', 'CoapSchemeError', 'CoapConnectionError']) {
      expect(names, n).toContain(n);
    }
    expect(names).not.toContain('createServer');
    expect(names).not.toContain('default');
  });

  it('declare exactly the values the bundle exports (both ways), without Node types', () => {
    // Record<keyof typeof t, true>: a name the declarations lack is an excess property, one
    // they have and the bundle lacks a missing one.
    const code = `import * as t from 'turbocoap';
export const exported: Record<keyof typeof t, true> = { ${names.map((n) => `${n}: true`).join(', ')} };
`;
    expect(tsc(code)).toBe('');
    // the same check notices a difference
    expect(tsc(code.replace(' };', ', createServer: true };'))).toMatch(/createServer/);
  });

  it('a browser program typechecks against them', () => {
    expect(
      tsc(`import { connect, observe, request, Router, CoapConnectionError, type IncomingRequest } from 'turbocoap';
export async function main(): Promise<string[]> {
  const out: string[] = [];
  const res = await request('coap+ws://example.org/x', { method: 'POST', payload: new Uint8Array(300_000), maxBodySize: 1 << 20 });
  out.push(res.code, res.text());
  const conn = await connect('coaps+ws://example.org', {
    handler: new Router().get('/whoami', (req: IncomingRequest) => ({ code: '2.05', payload: req.path })),
  });
  conn.on('close', (e?: CoapConnectionError) => out.push(String(e?.code)));
  out.push((await conn.request('/hello')).text());
  for await (const n of observe('coap+ws://example.org/clock')) {
    out.push(String(n.observe));
    break;
  }
  await conn.close();
  return out;
}
`),
    ).toBe('');
  });

  it('the declarations reach no Node module', () => {
    const d = readFileSync(join(root, 'dist', 'turbocoap.browser.d.mts'), 'utf8');
    expect(d).toContain("export * from './types-browser/browser.js'");
    const conn = readFileSync(join(root, 'dist', 'types-browser', 'connection.d.ts'), 'utf8');
    expect(conn).toMatch(/from '\.\/events-browser'/);
  });
});

describe('the bundle rule: no Node built-ins', () => {
  /** esbuild with the build's plugin on one module's text; the error texts ([] when it builds). */
  async function bundleErrors(code: string): Promise<string[]> {
    try {
      await build({ stdin: { contents: code, resolveDir: join(root, 'ts'), sourcefile: 'entry.ts', loader: 'ts' }, bundle: true, write: false, platform: 'browser', format: 'esm', logLevel: 'silent', plugins: [noNodeBuiltinsPlugin(root)] });
      return [];
    } catch (e) {
      return ((e as { errors?: { text: string }[] }).errors ?? []).map((x) => x.text);
    }
  }

  it('fails on a built-in, prefixed or not, and on a subpath of one', async () => {
    for (const spec of ['node:fs', 'fs', 'path/posix', 'events', 'node:crypto']) {
      expect(await bundleErrors(`import * as m from '${spec}'; console.log(m);`), spec).toEqual([
        expect.stringMatching(new RegExp(`^Node built-in "${spec}" imported by .*: the browser bundle must not use Node built-ins$`)),
      ]);
    }
  });

  it('resolves node:events to the browser EventEmitter, and builds the entry', async () => {
    expect(await bundleErrors(`import { EventEmitter } from 'node:events'; console.log(new EventEmitter());`)).toEqual([]);
    expect(await bundleErrors(`export * from './browser';`)).toEqual([]);
  });
});

describe('ts/events-browser (node:events in the bundle)', () => {
  it('on / once / off / emit / listenerCount as Node', () => {
    const e = new EventEmitter();
    const got: string[] = [];
    const a = (x: string): void => void got.push(`a${x}`);
    e.on('x', a);
    e.once('x', (x: string) => got.push(`once${x}`));
    expect(e.listenerCount('x')).toBe(2);
    expect(e.emit('x', '1')).toBe(true);
    expect(e.emit('x', '2')).toBe(true);
    e.off('x', a);
    expect(e.emit('x', '3')).toBe(false);
    expect(got).toEqual(['a1', 'once1', 'a2']);
    const f = (): void => void got.push('f');
    e.once('y', f);
    e.removeListener('y', f); // a once listener is removed by the function it wraps
    expect(e.emit('y')).toBe(false);
  });

  it("an 'error' without a listener throws it", () => {
    const e = new EventEmitter();
    const err = new Error('boom');
    expect(() => e.emit('error', err)).toThrow(err);
    e.on('error', () => undefined);
    expect(e.emit('error', err)).toBe(true);
  });
});
