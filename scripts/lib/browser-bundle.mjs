// The rule of the browser bundle (scripts/build.mjs step 4): no Node built-ins. An esbuild
// plugin that resolves the few substituted modules to their browser versions in ts/ and fails
// the build on any other built-in, prefixed (`node:fs`) or not (`fs`, `path/posix`), so that
// a polyfill package that happens to be installed cannot slip in either.
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Node module -> the browser module the bundle (and its declarations) use instead. */
export const BROWSER_SUBSTITUTES = { 'node:events': join(root, 'ts', 'events-browser.ts') };

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Whether an import specifier names a Node built-in. */
export function isNodeBuiltin(spec) {
  return spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0]);
}

/** The esbuild plugin; `base` is what importer paths in its messages are relative to. */
export function noNodeBuiltinsPlugin(base = root) {
  return {
    name: 'no-node-builtins',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        const sub = BROWSER_SUBSTITUTES[args.path];
        if (sub !== undefined) return { path: sub };
        if (isNodeBuiltin(args.path)) {
          return { errors: [{ text: `Node built-in "${args.path}" imported by ${relative(base, args.importer)}: the browser bundle must not use Node built-ins` }] };
        }
        return undefined;
      });
    },
  };
}
