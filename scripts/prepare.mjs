#!/usr/bin/env node
// npm "prepare" script (npm install in a git checkout, npm pack, installs from a git URL):
// builds dist/ with scripts/build.mjs when the sources are here. An installed package holds
// dist/ already and ships neither ts/ nor build.mjs: then there is nothing to do.
// Shipped in the package (package.json "files").
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const build = join(root, 'scripts', 'build.mjs');
if (existsSync(build) && existsSync(join(root, 'ts', 'index.ts'))) {
  const r = spawnSync(process.execPath, [build], { cwd: root, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
