// Child-process plumbing for the UDP benchmarks: every child is tracked and killed when the
// benchmark ends, fails or is interrupted; every wait is bounded.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants, readFileSync } from 'node:fs';
import { createServer as createTcpServer } from 'node:net';
import { delimiter, join } from 'node:path';

const children = new Set();

function killEverything(signal = 'SIGKILL') {
  for (const c of children) {
    try {
      c.proc.kill(signal);
    } catch {
      /* gone */
    }
  }
}

let handlersInstalled = false;

/** Kill every child on exit, Ctrl-C, SIGTERM and uncaught errors. */
export function installCleanup() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => killEverything('SIGKILL'));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping ${children.size} child process(es)\n`);
      killEverything('SIGKILL');
      process.exit(130);
    });
  }
  process.on('uncaughtException', (e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    killEverything('SIGKILL');
    process.exit(1);
  });
  process.on('unhandledRejection', (e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    killEverything('SIGKILL');
    process.exit(1);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A binary on PATH, or undefined. */
export function which(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** A port free for UDP (and TCP, which libcoap also binds) on 127.0.0.1. */
export async function freePort() {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise((res, rej) => {
      const s = createSocket('udp4');
      s.once('error', rej);
      s.bind(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => res(p));
      });
    });
    const ok = await new Promise((res) => {
      const t = createTcpServer();
      t.once('error', () => res(false));
      t.listen(port, '127.0.0.1', () => t.close(() => res(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port');
}

/**
 * Spawns a tracked child. Returns { proc, pid, out(), done, kill() }; stdout/stderr are kept
 * (bounded) for error messages and JSON results.
 */
export function start(name, cmd, args, opts = {}) {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  const c = { name, proc, pid: proc.pid, stdout: '', stderr: '', exited: false, code: null, signal: null };
  const cap = 1 << 20;
  proc.stdout.setEncoding('utf8').on('data', (d) => {
    if (c.stdout.length < cap) c.stdout += d;
  });
  proc.stderr.setEncoding('utf8').on('data', (d) => {
    if (c.stderr.length < cap) c.stderr += d;
  });
  c.done = new Promise((res) => {
    const fin = (code, signal) => {
      if (c.exited) return;
      c.exited = true;
      c.code = code;
      c.signal = signal;
      children.delete(c);
      res();
    };
    proc.on('exit', fin);
    proc.on('error', (e) => {
      c.stderr += `spawn error: ${e.message}\n`;
      fin(null, null);
    });
  });
  c.out = () => `--- ${name} stdout ---\n${c.stdout.slice(-3000)}\n--- ${name} stderr ---\n${c.stderr.slice(-3000)}`;
  c.kill = async (graceMs = 3000) => {
    if (c.exited) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => c.exited || proc.kill('SIGKILL'), graceMs);
    await c.done;
    clearTimeout(t);
  };
  children.add(c);
  return c;
}

/** Runs a child to completion, SIGKILLed after timeoutMs. Resolves the child record. */
export async function runToEnd(name, cmd, args, timeoutMs, opts = {}) {
  const c = start(name, cmd, args, opts);
  const t = setTimeout(() => {
    c.timedOut = true;
    c.proc.kill('SIGKILL');
  }, timeoutMs);
  await c.done;
  clearTimeout(t);
  return c;
}

/**
 * Sends a CON GET for `path` and resolves true when a message with the same MID (ACK or
 * RST) arrives within timeoutMs. Works for any CoAP server.
 */
export function probe(host, port, path = 'time', timeoutMs = 300) {
  return new Promise((res) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const mid = (Math.random() * 0xffff) | 0;
    const seg = Buffer.from(path);
    // ver 1, CON, TKL 1; GET; MID; token 0x7b; Uri-Path (delta 11)
    const hdr = Buffer.from([0x41, 0x01, mid >> 8, mid & 0xff, 0x7b]);
    const opt = seg.length < 13 ? Buffer.from([0xb0 | seg.length]) : Buffer.from([0xbd, seg.length - 13]);
    let done = false;
    const fin = (v) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      try {
        s.close();
      } catch {
        /* closed */
      }
      res(v);
    };
    const t = setTimeout(() => fin(false), timeoutMs);
    s.on('error', () => fin(false));
    s.on('message', (m) => fin(m.length >= 4 && m[2] === mid >> 8 && m[3] === (mid & 0xff)));
    s.connect(port, host, () => s.send(Buffer.concat([hdr, opt, seg])));
  });
}

/** Polls {@link probe} until the server answers; throws after timeoutMs or if the child died. */
export async function waitReady(child, host, port, path, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exited) throw new Error(`${child.name} exited (code ${child.code}, signal ${child.signal})\n${child.out()}`);
    if (await probe(host, port, path, 250)) return;
    await sleep(50);
  }
  throw new Error(`${child.name} did not answer on ${host}:${port} within ${timeoutMs} ms\n${child.out()}`);
}

/** Peak resident set size (VmHWM) of a live process in MB, or undefined. */
export function peakRssMB(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
