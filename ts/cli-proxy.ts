/**
 * `turbocoap proxy`: the cross-transport proxy (ts/proxy.ts) on the command line. Called from
 * cli.ts's command table.
 *
 * @internal
 */
import { parseArgs } from 'node:util';
import { LISTEN_SCHEME, UsageError, closeOnSignal, hostPort, parseListens, parsePsk, readPem } from './cli-args';
import { createProxy, type CoapProxy, type ProxyOptions } from './proxy';

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

interface Io {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
}

/** Runs `turbocoap proxy ARGS`; resolves with the exit status once closed by a signal. */
export async function proxyCommand(argv: readonly string[], io: Io): Promise<number> {
  let proxy: CoapProxy;
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
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const psk = values.psk === undefined ? undefined : parsePsk(values.psk);
    if ((values.cert === undefined) !== (values.key === undefined)) throw new UsageError('give --cert and --key together');
    const cert = values.cert === undefined ? undefined : readPem(values.cert, '--cert');
    const key = values.key === undefined ? undefined : readPem(values.key, '--key');
    const ca = values.ca === undefined ? undefined : readPem(values.ca, '--ca');
    const listens = parseListens(values.listen ?? ['coap://[::]:5683'], psk !== undefined || cert !== undefined);
    const t = values.timeout;
    if (t !== undefined && !/^\d+$/.test(t)) throw new UsageError(`--timeout must be a number of ms, not ${JSON.stringify(t)}`);
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
      throw new UsageError((e as Error).message);
    }
    for (const l of listens) {
      const sec = l.secure ? { cert, key, psk: psk === undefined ? undefined : { [psk.identity]: psk.key } } : {};
      try {
        await proxy.listen({ transport: l.transport, host: l.host, port: l.port, ...sec });
      } catch (e) {
        io.stderr.write(`turbocoap: cannot listen on ${l.transport} ${l.host} port ${l.port}: ${(e as Error).message}\n`);
        await proxy.close();
        return 3;
      }
      const a = proxy.address(l.transport);
      io.stdout.write(`turbocoap proxy listening on ${LISTEN_SCHEME[l.transport]}://${hostPort(a.address, a.port)}\n`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
      io.stderr.write(`turbocoap: ${(e as Error).message}\nRun 'turbocoap proxy --help' for usage.\n`);
      return 2;
    }
    throw e;
  }
  return closeOnSignal(io, () => proxy.close());
}
