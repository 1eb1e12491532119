// Child-process plumbing for the UDP benchmarks: every child is tracked and killed when the
// benchmark ends, fails or is interrupted; every wait is bounded. Spawning, tracking, free ports
// and the CoAP probe are shared with the tests (scripts/lib/proc.mjs).
import { readFileSync } from 'node:fs';
import { coapExchange, freePort as freePortOn, liveCount, signalAll, sleep, spawnTracked } from '../../scripts/lib/proc.mjs';

export { sleep, which } from '../../scripts/lib/proc.mjs';

let handlersInstalled = false;

/** Kill every child on exit, Ctrl-C, SIGTERM and uncaught errors. */
export function installCleanup() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => signalAll('SIGKILL'));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping ${liveCount()} child process(es)\n`);
      signalAll('SIGKILL');
      process.exit(130);
    });
  }
  process.on('uncaughtException', (e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    signalAll('SIGKILL');
    process.exit(1);
  });
  process.on('unhandledRejection', (e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    signalAll('SIGKILL');
    process.exit(1);
  });
}

/** A port free for UDP (and TCP, which libcoap also binds) on 127.0.0.1. */
export const freePort = () => freePortOn('127.0.0.1', true);

/**
 * Spawns a tracked child (scripts/lib/proc.mjs). Returns { proc, pid, exited, exitCode, signal,
 * stdout, stderr, output(), done, kill() }; stdout/stderr are kept (bounded) for error messages
 * and JSON results.
 */
export function start(name, cmd, args, opts = {}) {
  return spawnTracked(name, cmd, args, opts, { outputCap: 1 << 20, tail: 3000 });
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
  const seg = Buffer.from(path);
  // ver 1, CON, TKL 1; GET; MID; token 0x7b; Uri-Path (delta 11)
  const opt = seg.length < 13 ? Buffer.from([0xb0 | seg.length]) : Buffer.from([0xbd, seg.length - 13]);
  const message = (mid) => Buffer.concat([Buffer.from([0x41, 0x01, mid >> 8, mid & 0xff, 0x7b]), opt, seg]);
  return coapExchange(host, port, message, timeoutMs);
}

/** Polls {@link probe} until the server answers; throws after timeoutMs or if the child died. */
export async function waitReady(child, host, port, path, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exited) throw new Error(`${child.name} exited (code ${child.exitCode}, signal ${child.signal})\n${child.output()}`);
    if (await probe(host, port, path, 250)) return;
    await sleep(50);
  }
  throw new Error(`${child.name} did not answer on ${host}:${port} within ${timeoutMs} ms\n${child.output()}`);
}

/** A kB line of a live process's /proc status (VmRSS, VmHWM...) in KiB, or undefined. */
function statusKiB(pid, field) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Peak resident set size (VmHWM) of a live process in MB, or undefined. */
export function peakRssMB(pid) {
  const k = statusKiB(pid, 'VmHWM');
  return k === undefined ? undefined : k / 1024;
}

/** Resident set size (VmRSS) of a live process in KiB, or undefined. */
export const rssKiB = (pid) => statusKiB(pid, 'VmRSS');
