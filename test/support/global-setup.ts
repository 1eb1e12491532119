/**
 * vitest global setup: make the artifacts under test current.
 *  - dist/ is rebuilt (scripts/build.mjs: tsc, ESM wrapper, browser bundle);
 *  - build/Release/turbocoap.node is rebuilt with node-gyp when missing or
 *    older than any of its sources.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

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
      process.stderr.write(String(err.stdout ?? '') + String(err.stderr ?? ''));
      throw new Error('global-setup: node-gyp rebuild failed (output above)');
    }
  }
}
