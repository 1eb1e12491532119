/**
 * Event-loop lifetime of UDP endpoints, in child processes running the built package:
 * a listening server keeps the process alive; an agent keeps it alive while a request is
 * outstanding (so the request can finish) and not once idle.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from './support/backends';
import { udpBackends } from './support/udp';

const dist = JSON.stringify(join(root, 'dist', 'index.js'));

/**
 * Runs a script; resolves with its output and exit code, or with `running: true` if still alive
 * at `ms`. With `after`: once stdout contains that text, the child gets `graceMs` more to exit
 * (so a slow start under load does not count against it), still at most `ms` in all.
 */
function run(
  script: string,
  ms: number,
  after?: { text: string; graceMs: number },
): Promise<{ code: number | null; stdout: string; stderr: string; running: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const stop = (): void => {
      child.kill('SIGKILL');
      resolve({ code: null, stdout, stderr, running: true });
    };
    let grace: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (after !== undefined && grace === undefined && stdout.includes(after.text)) grace = setTimeout(stop, after.graceMs);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(stop, ms);
    child.on('exit', (code) => {
      clearTimeout(t);
      clearTimeout(grace);
      resolve({ code, stdout, stderr, running: false });
    });
  });
}

describe.each(udpBackends)('lifetime (%s)', (backend) => {
  it('an idle agent does not keep the process alive', async () => {
    const r = await run(
      `const t = require(${dist});
       (async () => {
         const server = t.createServer(() => ({ code: '2.05', payload: 'x' }), { backend: '${backend}' });
         await server.listen({ port: 0, host: '127.0.0.1' });
         const agent = new t.Agent({ backend: '${backend}' });
         const r = await agent.request('coap://127.0.0.1:' + server.address().port + '/');
         await server.close();
         console.log(r.code, agent.backend);
       })();`,
      5000,
    );
    expect(r.stderr).toBe('');
    expect(r.running).toBe(false);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`2.05 ${backend}`);
  });

  it('an outstanding request keeps the process alive until it completes', async () => {
    const r = await run(
      `const t = require(${dist});
       const dgram = require('node:dgram');
       const silent = dgram.createSocket('udp4');
       silent.bind(0, '127.0.0.1', () => {
         silent.unref();
         const agent = new t.Agent({ backend: '${backend}', ackTimeout: 50, maxRetransmit: 2 });
         agent.request('coap://127.0.0.1:' + silent.address().port + '/').catch((e) => console.log(e.code));
       });`,
      5000,
    );
    expect(r.stderr).toBe('');
    expect(r.running).toBe(false);
    expect(r.stdout.trim()).toBe('TIMEOUT');
  });

  it('a listening server keeps the process alive', async () => {
    const r = await run(
      `const t = require(${dist});
       t.createServer(() => ({ code: '2.05' }), { backend: '${backend}' })
         .listen({ port: 0, host: '127.0.0.1' }).then(() => console.log('listening'));`,
      20_000,
      { text: 'listening', graceMs: 1000 },
    );
    expect(r.stdout.trim()).toBe('listening');
    expect(r.running).toBe(true);
  });
});
