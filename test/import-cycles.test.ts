// No import circles in ts/ (issue 9): every `import ... from`, `import type`, `export ... from`
// and side-effect `import '...'` between files under ts/ is an edge; the graph must be acyclic.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..', 'ts');

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Module specifiers of a source's import / export-from statements (comments stripped). */
export function specifiers(src: string): string[] {
  const code = src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out: string[] = [];
  const re = /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]/g;
  for (let m = re.exec(code); m !== null; m = re.exec(code)) out.push(m[1] as string);
  return out;
}

function resolveLocal(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(from), spec);
  for (const c of [`${base}.ts`, join(base, 'index.ts')]) {
    try {
      if (statSync(c).isFile()) return c;
    } catch {
      /* next */
    }
  }
  throw new Error(`${relative(root, from)}: cannot resolve ${spec}`);
}

/** Every cycle found by depth-first search (each reported once, from its first node). */
export function cycles(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (n: string): void => {
    state.set(n, 1);
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      const s = state.get(m);
      if (s === 1) found.push([...stack.slice(stack.indexOf(m)), m]);
      else if (s === undefined) visit(m);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

describe('ts/ import graph', () => {
  it('parses import, import type, export-from and side-effect imports', () => {
    const src = [
      "import { a } from './a';",
      "import type { B } from './b';",
      "export { c } from './c';",
      "export type { D } from './d';",
      "export * from './e';",
      "import './f';",
      "import {\n  g,\n  type H,\n} from './g';",
      "// import { x } from './not-me';",
      "/* import { y } from './nor-me'; */",
      "const s = 'import nothing from here';",
    ].join('\n');
    expect(specifiers(src)).toEqual(['./a', './b', './c', './d', './e', './f', './g']);
  });

  it('finds a cycle when there is one', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', []],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c', 'a']]);
  });

  it('has no cycles', () => {
    const all = files(root);
    expect(all.length).toBeGreaterThan(20);
    const graph = new Map<string, string[]>();
    for (const f of all) {
      const deps: string[] = [];
      for (const s of specifiers(readFileSync(f, 'utf8'))) {
        const d = resolveLocal(f, s);
        if (d !== undefined) deps.push(relative(root, d));
      }
      graph.set(relative(root, f), deps);
    }
    expect(cycles(graph).map((c) => c.join(' -> '))).toEqual([]);
  });
});
