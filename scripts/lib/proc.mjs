// Child-process and loopback plumbing shared by the benchmarks (bench/lib/proc.mjs, plain node)
// and the tests (test/support/peers.ts, through proc.d.mts): every child is tracked and killed
// when the process exits, every wait is bounded.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants } from 'node:fs';
import { createServer as createTcpServer } from 'node:net';
import { delimiter, join } from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A binary on PATH, or undefined. */
export function which(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
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

/**
 * A UDP port that is free on `host` right now (and, with `tcp`, free for TCP as well, as
 * libcoap's server binds both). Picked by the kernel, so parallel users do not collide.
 */
export async function freePort(host = '127.0.0.1', tcp = false) {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise((res, rej) => {
      const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      s.once('error', rej);
      s.bind(0, host, () => {
        const p = s.address().port;
        s.close(() => res(p));
      });
    });
    if (!tcp) return port;
    const ok = await new Promise((res) => {
      const t = createTcpServer();
      t.once('error', () => res(false));
      t.listen(port, host, () => t.close(() => res(true)));
    });
    if (ok) return port;
  }
  throw new Error('freePort: no port free for both UDP and TCP after 20 attempts');
}

/**
 * Sends the CoAP datagram `message(mid)` (a random MID) from a plain dgram socket and resolves
 * true when a message with the same MID (ACK or RST) comes back within timeoutMs.
 */
export function coapExchange(host, port, message, timeoutMs) {
  return new Promise((res) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const mid = (Math.random() * 0xffff) | 0;
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        s.close();
      } catch {
        /* already closed */
      }
      res(v);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on('error', () => finish(false)); // ICMP port unreachable surfaces here on a connected socket
    s.on('message', (m) => finish(m.length >= 4 && m[2] === mid >> 8 && m[3] === (mid & 0xff)));
    s.connect(port, host, () => {
      s.send(message(mid));
    });
  });
}

const live = new Set();

/** SIGKILLs (or sends `signal` to) every tracked child still running; synchronous. */
export function signalAll(signal = 'SIGKILL') {
  for (const p of live) {
    try {
      p.proc.kill(signal);
    } catch {
      /* gone */
    }
  }
}

/** How many tracked children are still running. */
export function liveCount() {
  return live.size;
}

process.once('exit', () => signalAll('SIGKILL'));

/**
 * Spawns a tracked child (see proc.d.mts for the record). stdout and stderr are kept up to
 * `outputCap` characters each; output() shows the last `tail` of each.
 */
export function spawnTracked(name, cmd, args, opts = {}, { outputCap = 4 * 1024 * 1024, tail = 4000 } = {}) {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let exited = false;
  let exitCode = null;
  let signal = null;
  let resolveDone;
  const done = new Promise((r) => (resolveDone = r));
  const peer = {
    name,
    proc,
    pid: proc.pid,
    get exited() {
      return exited;
    },
    get exitCode() {
      return exitCode;
    },
    get signal() {
      return signal;
    },
    stdout: '',
    stderr: '',
    output() {
      return `--- ${name} stdout ---\n${peer.stdout.slice(-tail)}\n--- ${name} stderr ---\n${peer.stderr.slice(-tail)}`;
    },
    done,
    async kill(graceMs = 3000) {
      if (exited) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => {
        if (!exited) proc.kill('SIGKILL');
      }, graceMs);
      await done;
      clearTimeout(t);
    },
  };
  proc.stdout?.setEncoding('utf8').on('data', (d) => {
    if (peer.stdout.length < outputCap) peer.stdout += d;
  });
  proc.stderr?.setEncoding('utf8').on('data', (d) => {
    if (peer.stderr.length < outputCap) peer.stderr += d;
  });
  const onExit = (code, sig) => {
    if (exited) return;
    exited = true;
    exitCode = code;
    signal = sig;
    live.delete(peer);
    resolveDone();
  };
  proc.on('exit', onExit);
  proc.on('error', (e) => {
    peer.stderr += `spawn error: ${e.message}\n`;
    onExit(null, null);
  });
  live.add(peer);
  return peer;
}

/** Kills (SIGTERM, then SIGKILL after the grace time) every tracked child still running. */
export async function killAll() {
  await Promise.all([...live].map((p) => p.kill()));
}
