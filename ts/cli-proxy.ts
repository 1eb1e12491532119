/**
 * `turbocoap proxy`: the cross-transport proxy (ts/proxy.ts) on the command line. Called from
 * cli.ts's command table.
 *
 * @internal
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createProxy, type CoapProxy, type ProxyOptions } from './proxy';
import type { ListenOptions, ListenTransport } from './server';
import { parseUri } from './uri';

export const PROXY_HELP = `usage: turbocoap proxy --listen URI [--listen URI ...] [--to URI] [--allow HOST[:PORT] ...]
                       [--psk IDENTITY:KEY] [--cert FILE --key FILE] [--ca FILE] [--timeout MS]

Runs a CoAP proxy (RFC 7252 §5.7, RFC 8323 §8) between transports until SIGINT or SIGTERM.

  --listen URI        where to listen (repeatable, one per transport): coap://HOST:PORT (UDP),
                      coap+tcp://, coaps+tcp://, coap+ws://, coaps+ws:// (path /.well-known/coap),
                      coaps:// (DTLS); default coap://[::]:5683
  --to URI            reverse mode: forward every request without Proxy-Uri/Proxy-Scheme to
                      this origin (e.g. --to coap://192.0.2.7:5683: browsers on coap+ws reach a
                      UDP device)
  --allow HOST[:PORT] forward mode: an upstream host that Proxy-Uri / Proxy-Scheme requests may
                      name (repeatable; '*' allows any: an open relay). Default: none, so every
                      forward request is answered 4.03 Forbidden
  --psk IDENTITY:KEY  pre-shared key of secured listeners (coaps+tcp, coaps+ws, coaps) and of
                      secured upstreams
  --cert FILE --key FILE  certificate and key (PEM) of secured listeners
  --ca FILE           CA certificates (PEM) that secured upstreams are verified against
  --timeout MS        upstream timeout (default 30000): then 5.04 Gateway Timeout
  -h, --help          this help

Upstream failures answer 5.02 Bad Gateway (refused, unreachable, handshake), 5.04 (timeout);
schemes not spoken here 5.05; a bad Proxy-Uri 4.00; over the proxy's bounds 5.03 + Max-Age.
`;

const TRANSPORT: Readonly<Record<string, ListenTransport>> = { coap: 'udp', 'coap+tcp': 'tcp', 'coaps+tcp': 'tls', 'coap+ws': 'ws', 'coaps+ws': 'wss', coaps: 'dtls' };

interface Io {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
}

class ProxyUsageError extends Error {}

/** A listen URI as listen options (transport, host, port). */
function listenOf(uri: string): ListenOptions & { transport: ListenTransport; host: string; port: number } {
  // port 0 (any free port) is no URI port: parsed without it
  const zero = /^([a-z+]+:\/\/(?:\[[^\]]*\]|[^/:?]*)):0(?=[/?]|$)(.*)$/i.exec(uri);
  let u;
  try {
    u = parseUri(zero === null ? uri : `${zero[1]}${zero[2]}`);
  } catch (e) {
    throw new ProxyUsageError(`--listen ${uri}: ${(e as Error).message}`);
  }
  return { transport: TRANSPORT[u.scheme] as ListenTransport, host: u.host, port: zero === null ? u.port : 0 };
}

function pemFile(what: string, f: string | undefined): string | undefined {
  if (f === undefined) return undefined;
  try {
    return readFileSync(f, 'utf8');
  } catch (e) {
    throw new ProxyUsageError(`${what} ${f}: ${(e as Error).message}`);
  }
}

/** Runs `turbocoap proxy ARGS`; resolves with the exit status once closed by a signal. */
export async function proxyCommand(argv: readonly string[], io: Io): Promise<number> {
  let proxy: CoapProxy;
  const listens: ReturnType<typeof listenOf>[] = [];
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        listen: { type: 'string', multiple: true },
        to: { type: 'string' },
        allow: { type: 'string', multiple: true },
        psk: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        ca: { type: 'string' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help === true) {
      io.stdout.write(PROXY_HELP);
      return 0;
    }
    if (positionals.length > 0) throw new ProxyUsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    for (const l of values.listen ?? ['coap://[::]:5683']) listens.push(listenOf(l));
    const seen = new Set<string>();
    for (const l of listens) {
      if (seen.has(l.transport)) throw new ProxyUsageError(`--listen: one listener per transport (${l.transport} twice)`);
      seen.add(l.transport);
    }
    let psk: { identity: string; key: Uint8Array | string } | undefined;
    if (values.psk !== undefined) {
      // as `serve --psk`: split at the first colon; a key written 0x... is hex
      const i = values.psk.indexOf(':');
      const k = values.psk.slice(i + 1);
      if (i <= 0 || k === '') throw new ProxyUsageError(`--psk must be IDENTITY:KEY, not ${JSON.stringify(values.psk)}`);
      psk = { identity: values.psk.slice(0, i), key: /^0x([0-9a-fA-F]{2})+$/.test(k) ? new Uint8Array(Buffer.from(k.slice(2), 'hex')) : k };
    }
    const cert = pemFile('--cert', values.cert);
    const key = pemFile('--key', values.key);
    if ((cert === undefined) !== (key === undefined)) throw new ProxyUsageError('--cert and --key go together');
    const ca = pemFile('--ca', values.ca);
    for (const l of listens) {
      if ((l.transport === 'tls' || l.transport === 'wss' || l.transport === 'dtls') && psk === undefined && cert === undefined) {
        throw new ProxyUsageError(`--listen ${l.transport}: a secured listener needs --psk or --cert/--key`);
      }
    }
    const t = values.timeout;
    if (t !== undefined && !/^\d+$/.test(t)) throw new ProxyUsageError(`--timeout must be a number of ms, not ${JSON.stringify(t)}`);
    if (values.to === undefined && (values.allow ?? []).length === 0) {
      io.stderr.write('turbocoap proxy: neither --to nor --allow: every request will be refused\n');
    }
    const opts: ProxyOptions = {
      target: values.to,
      allow: values.allow,
      timeout: t === undefined ? undefined : Number(t),
      upstream: { psk, ca },
    };
    try {
      proxy = createProxy(opts);
    } catch (e) {
      throw new ProxyUsageError((e as Error).message);
    }
    for (const l of listens) {
      const secured = l.transport === 'tls' || l.transport === 'wss' || l.transport === 'dtls';
      const sec = secured ? { cert, key, psk: psk === undefined ? undefined : { [psk.identity]: psk.key } } : {};
      try {
        await proxy.listen({ ...l, ...sec });
      } catch (e) {
        io.stderr.write(`turbocoap: cannot listen on ${l.transport} ${l.host} port ${l.port}: ${(e as Error).message}\n`);
        await proxy.close();
        return 3;
      }
      const a = proxy.address(l.transport);
      const scheme = Object.keys(TRANSPORT).find((s) => TRANSPORT[s] === l.transport) as string;
      io.stdout.write(`turbocoap proxy listening on ${scheme}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}\n`);
    }
  } catch (e) {
    if (e instanceof ProxyUsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
      io.stderr.write(`turbocoap: ${(e as Error).message}\nRun 'turbocoap proxy --help' for usage.\n`);
      return 2;
    }
    throw e;
  }
  return new Promise<number>((resolveExit) => {
    let closing = false;
    const stop = (sig: NodeJS.Signals): void => {
      if (closing) return;
      closing = true;
      io.stdout.write(`turbocoap: ${sig}, closing\n`);
      const force = setTimeout(() => resolveExit(0), 2000);
      force.unref();
      void proxy.close().then(
        () => {
          clearTimeout(force);
          resolveExit(0);
        },
        () => {
          clearTimeout(force);
          resolveExit(3);
        },
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
