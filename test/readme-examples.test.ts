/**
 * The README's TypeScript examples typecheck under strict TypeScript against the built
 * package types (dist/, as `import ... from 'turbocoap'` resolves for a user): every ```ts
 * block of README.md becomes a module of its own and tsc checks them all. The names the
 * examples leave to the reader (a sensor's `read()`, an `AbortSignal`...) are declared below.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..');

/** The placeholders the README's examples use without defining them. */
const GLOBALS = `
declare function read(id?: string): string;
declare function apply(config: unknown): void;
declare function flash(image: Uint8Array): void;
declare function done(): boolean;
declare function handle(message: import('turbocoap').CoapMessage): void;
declare const signal: AbortSignal;
declare const image: Uint8Array;
declare const bytes: Uint8Array;
declare const frame: Uint8Array;
declare const wsMessage: Uint8Array;
declare const socket: import('node:net').Socket;
`;

/** The ```ts blocks of a Markdown text, with the line each starts on. */
export function tsBlocks(md: string): { line: number; code: string }[] {
  const out: { line: number; code: string }[] = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i] as string)) continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && !(lines[j] as string).startsWith('```')) j++;
    out.push({ line: start + 1, code: lines.slice(start, j).join('\n') });
    i = j;
  }
  return out;
}

describe('README examples', () => {
  it('finds the ts blocks', () => {
    expect(tsBlocks('a\n```ts\nconst x = 1;\n```\n```sh\nls\n```\n```ts\nlet y;\n```\n')).toEqual([
      { line: 3, code: 'const x = 1;' },
      { line: 9, code: 'let y;' },
    ]);
  });

  it('typecheck under strict TypeScript against dist/', () => {
    const blocks = tsBlocks(readFileSync(join(root, 'README.md'), 'utf8'));
    expect(blocks.length).toBeGreaterThanOrEqual(8);
    const dir = mkdtempSync(join(tmpdir(), 'turbocoap-readme-'));
    try {
      const files: string[] = ['globals.d.ts'];
      writeFileSync(join(dir, 'globals.d.ts'), GLOBALS);
      blocks.forEach((b, i) => {
        const name = `readme-line-${b.line}.ts`;
        files.push(name);
        writeFileSync(join(dir, name), `${b.code}\nexport {};\n`);
        void i;
      });
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            target: 'ES2022',
            lib: ['ES2022', 'DOM'],
            module: 'preserve',
            moduleResolution: 'bundler',
            moduleDetection: 'force',
            skipLibCheck: true,
            types: ['node'],
            typeRoots: [join(root, 'node_modules', '@types')],
            paths: { turbocoap: [join(root, 'dist', 'index.d.ts')] },
          },
          files,
        }),
      );
      const tsc = join(dirname(require.resolve('typescript/package.json', { paths: [root] })), 'bin', 'tsc');
      let output = '';
      try {
        execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
      } catch (e) {
        const x = e as { stdout?: string; stderr?: string };
        output = `${x.stdout ?? ''}${x.stderr ?? ''}`.trim();
      }
      // Errors name the file readme-line-N.ts: N is the README line the block starts on.
      expect(output).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
