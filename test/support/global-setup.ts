/**
 * vitest global setup: make the artifacts under test current.
 *  - dist/ is rebuilt (scripts/build.mjs: tsc, ESM wrapper, browser bundle);
 *  - build/Release/turbocoap.node is rebuilt with node-gyp when missing or
 *    older than any of its sources. Where that fails (no compiler), CI fails;
 *    elsewhere one line says the native suites are skipped, and the WASM ones run
 *    (test/support/backends.ts: hasNative).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { inCI } from './ci';

const root = resolve(__dirname, '..', '..');

function mtime(f: string): number {
  return statSync(join(root, f)).mtimeMs;
}

export default function setup(): void {
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });

  const addon = 'build/Release/turbocoap.node';
  const sources: string[] = [
    ...JSON.parse(readFileSync(join(root, 'native', 'sources.json'), 'utf8')).core,
    ...JSON.parse(readFileSync(join(root, 'native', 'sources.json'), 'utf8')).driver,
    'native/include/turbocoap.h',
    'native/binding/addon.cc',
    'native/binding/udp.c',
    'native/driver/abi.h',
    'native/driver/addr.h',
    'native/driver/dgram.h',
    'native/driver/ep_batch.h',
    'binding.gyp',
    'native/sources.json',
  ];
  const stale = !existsSync(join(root, addon)) || sources.some((s) => mtime(s) > mtime(addon));
  if (stale) {
    const req = createRequire(join(root, 'package.json'));
    const gyp = join(dirname(req.resolve('node-gyp/package.json')), 'bin', 'node-gyp.js');
    try {
      execFileSync(process.execPath, [gyp, 'rebuild'], { cwd: root, stdio: 'pipe' });
    } catch (e) {
      const err = e as { stdout?: Buffer; stderr?: Buffer };
      const out = String(err.stdout ?? '') + String(err.stderr ?? '');
      if (inCI) {
        process.stderr.write(out);
        throw new Error('global-setup: node-gyp rebuild failed (output above)');
      }
      // Outside CI the addon is optional, as it is for users: the WASM suites still run.
      const log = join(root, 'build', 'test-rebuild.log');
      try {
        mkdirSync(dirname(log), { recursive: true });
        writeFileSync(log, out);
      } catch {
        /* the line below still says it */
      }
      console.log(`global-setup: native suites SKIPPED (CI is not set): node-gyp rebuild failed (${relative(root, log)}); the WASM suites run`);
      return;
    }
  }
  // A present addon that does not load (another Node ABI, a broken file) is the same case.
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(join(root, addon))})`], { encoding: 'utf8' });
  if (probe.status !== 0) {
    const why = `${addon} does not load: ${(probe.stderr.split('\n').find((l) => /Error/.test(l)) ?? '').trim()}`;
    if (inCI) throw new Error(`global-setup: ${why}`);
    console.log(`global-setup: native suites SKIPPED (CI is not set): ${why}; the WASM suites run`);
  }
}
