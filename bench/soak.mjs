#!/usr/bin/env node
// Soak under abuse (issue 10). The server runs alone in its own child process
// (bench/lib/soak-server.mjs), the attackers in another (bench/lib/soak-attack.mjs: the issue's
// attacks from raw UDP sockets) and our legitimate client in a third (bench/lib/soak-client.mjs),
// all on loopback. Every second it prints the server process's RSS and V8 heap used / external /
// arrayBuffers (asked over IPC), legitimate answers/s, legitimate requests lost (no answer within
// 5 s), the worst amplification seen by one unverified source, the server's stats()
// counters, the distinct attacking ports so far and the size of the server's JS-side table of
// observable paths (`paths`). At the end, per backend: RSS at start / 10 s / 30 s / 60 s / end and OK when lost = 0,
// dropped = 0 and amplification <= 3.
//
//   npm run soak                                  60 s per backend, native then wasm
//   SOAK_SECONDS=20 SOAK_BACKEND=wasm npm run soak
//   SOAK_SERVER_NODE_OPTIONS='--trace-gc' npm run soak   node flags for the server process only
import { resolve } from 'node:path';
import { HOST, log, num, root } from './lib/bench-env.mjs';
import { freePort, installCleanup, sleep, start, waitReady } from './lib/proc.mjs';

const SECONDS = num('SOAK_SECONDS', 60, 1, 3600);
const BACKENDS = (process.env.SOAK_BACKEND ?? process.env.BENCH_ONLY ?? 'native,wasm').split(',').map((s) => s.trim()).filter(Boolean);
for (const b of BACKENDS) if (b !== 'native' && b !== 'wasm') throw new Error(`SOAK_BACKEND=${b}: expected native, wasm or both comma-separated`);
const serverFlags = (process.env.SOAK_SERVER_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);

installCleanup();

/** A child with an IPC channel whose { stats: id } requests are answered by { id, ... }. */
function child(name, script, args, env = {}, nodeFlags = []) {
  const c = start(name, process.execPath, [...nodeFlags, resolve(root, 'bench', 'lib', script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, ...env },
  });
  const waiting = new Map();
  let next = 0;
  c.proc.on('message', (m) => {
    const w = waiting.get(m?.id);
    if (w) waiting.delete(m.id), w(m);
    else if (m?.id === 'final') c.final = m;
  });
  c.ask = (timeoutMs = 2000) =>
    new Promise((res) => {
      const id = ++next;
      const t = setTimeout(() => waiting.delete(id) && res(undefined), timeoutMs);
      waiting.set(id, (m) => (clearTimeout(t), res(m)));
      try {
        c.proc.send({ stats: id });
      } catch {
        clearTimeout(t);
        res(undefined);
      }
    });
  c.tell = (m) => {
    try {
      c.proc.send(m);
    } catch {
      /* gone */
    }
  };
  return c;
}

const MB = (n) => (n === undefined ? '–' : (n / 1048576).toFixed(0));
const pad = (v, n) => String(v ?? '–').padStart(n);

async function soak(backend) {
  const port = await freePort();
  const env = { TURBOCOAP_BACKEND: backend };
  const server = child(`server (${backend})`, 'soak-server.mjs', [String(port)], env, serverFlags);
  const kids = [server];
  try {
    await waitReady(server, HOST, port, 'ok');
    const attack = child('attackers', 'soak-attack.mjs', [String(port)]);
    const client = child(`client (${backend})`, 'soak-client.mjs', [String(port)], env);
    kids.push(attack, client);
    const first = await server.ask();
    const rss = { 0: first?.mem.rss };
    log(`soak: ${backend} backend, ${SECONDS} s, server pid ${server.pid} on ${HOST}:${port}, RSS ${MB(first?.mem.rss)} MB before the load`);
    console.log(
      `\n## ${backend}\n\n   t  rss MB  heap MB  ext MB  ab MB  answers/s  lost  dropped  non  echo  verified  observers refused  uploads refused reclaimed  reused  worst amp  peers  paths`,
    );
    const t0 = Date.now();
    let last = 0;
    let worstAmp = 0;
    let s;
    let c;
    let a;
    for (let t = 1; t <= SECONDS; t++) {
      await sleep(Math.max(0, t * 1000 - (Date.now() - t0)));
      for (const k of kids) if (k.exited) throw new Error(`${k.name} exited (code ${k.exitCode}, signal ${k.signal})\n${k.output()}`);
      const [sv, av, cl] = await Promise.all([server.ask(), attack.ask(), client.ask()]);
      if (sv) s = sv;
      if (cl) c = cl;
      if (av) (a = av), (worstAmp = Math.max(worstAmp, av.worstAmp));
      const st = s?.stats ?? {};
      const m = sv?.mem ?? {};
      rss[t] = m.rss;
      console.log(
        `${pad(t, 4)}  ${pad(MB(m.rss), 6)}  ${pad(MB(m.heapUsed), 7)}  ${pad(MB(m.external), 6)}  ${pad(MB(m.arrayBuffers), 5)}  ${pad((c?.answered ?? 0) - last, 9)}  ${pad(c?.lost, 4)}  ${pad(st.responsesDropped, 7)}  ${pad(st.responsesNon, 4)}  ${pad(st.echoChallenges, 4)}  ${pad(st.verifiedPeers, 8)}  ${pad(st.observers, 9)} ${pad(st.observersRefused, 7)}  ${pad(st.uploads, 7)} ${pad(st.uploadsRefused, 7)} ${pad(st.uploadsReclaimed, 9)}  ${pad(st.blocksReused, 6)}  ${worstAmp.toFixed(2).padStart(9)}  ${pad(a?.peers, 5)}  ${pad(sv?.resources, 6)}`,
      );
      last = c?.answered ?? 0;
    }
    attack.tell({ stop: true });
    client.tell({ stop: true });
    await Promise.race([client.done, sleep(8000)]);
    const fin = client.final ?? c ?? {};
    const end = (await server.ask()) ?? s;
    const st = end?.stats ?? {};
    const ok = fin.lost === 0 && st.responsesDropped === 0 && worstAmp <= 3;
    const at = (t) => (rss[t] === undefined ? '–' : `${MB(rss[t])} MB`);
    console.log(
      `\nsoak ${backend}: server RSS start ${at(0)}, 10 s ${at(10)}, 30 s ${at(30)}, 60 s ${at(60)}, end ${MB(end?.mem.rss)} MB (heap ${MB(end?.mem.heapUsed)} MB, ${end?.resources} observable paths); ` +
        `${fin.answered} answers (${((fin.answered ?? 0) / SECONDS).toFixed(0)}/s), ${fin.lost} lost, ${st.responsesDropped} dropped, worst amplification ${worstAmp.toFixed(2)}x: ${ok ? 'OK' : 'NOT OK'}` +
        ` (${a?.peers} attacking ports; RSS of the client ${MB(c?.rss)} MB, of the attackers ${MB(a?.rss)} MB)`,
    );
    return ok;
  } finally {
    await Promise.all(kids.map((k) => k.kill()));
  }
}

let allOk = true;
for (const b of BACKENDS) {
  try {
    allOk = (await soak(b)) && allOk;
  } catch (e) {
    log(`!! soak ${b}: ${e?.message ?? e}`);
    allOk = false;
  }
}
process.exit(allOk ? 0 : 1);
