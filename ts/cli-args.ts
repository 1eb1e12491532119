/**
 * What the CLI's commands share (cli.ts: serve and the rest; cli-proxy.ts: proxy): usage
 * errors, --psk and PEM file arguments, --listen URIs, and running until SIGINT / SIGTERM.
 * Imported by both; imports neither.
 *
 * @internal
 */
import { readFileSync } from 'node:fs';
import type { ListenTransport } from './server';
import { CoapUriError, parseUri } from './uri';

/** A bad command line: the command prints it with a pointer to --help and exits 2. */
export class UsageError extends Error {}

/** `--psk IDENTITY:KEY`: split at the first colon; a key written 0x... is hex. */
export function parsePsk(s: string): { identity: string; key: Uint8Array | string } {
  const i = s.indexOf(':');
  if (i <= 0) throw new UsageError(`--psk must be IDENTITY:KEY, not ${JSON.stringify(s)}`);
  const identity = s.slice(0, i);
  const key = s.slice(i + 1);
  if (key === '') throw new UsageError('--psk: the key is empty');
  if (/^0x([0-9a-fA-F]{2})+$/.test(key)) return { identity, key: new Uint8Array(Buffer.from(key.slice(2), 'hex')) };
  return { identity, key };
}

/** The text of a PEM file named by option `what`. */
export function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${what}: cannot read ${file}: ${(e as Error).message}`);
  }
}

/** `host:port`, an IPv6 host in brackets. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A --listen URI: where to listen, and whether the transport is secured. */
export interface ListenUri {
  readonly uri: string;
  readonly transport: ListenTransport;
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
}

/**
 * --listen URIs (port 0: any free port), one per transport. `secured`: whether --psk or
 * --cert/--key was given, which a secured listener needs.
 */
export function parseListens(uris: readonly string[], secured: boolean): ListenUri[] {
  const out: ListenUri[] = [];
  const seen = new Set<string>();
  for (const l of uris) {
    let u;
    // port 0 (pick a free one) is no URI port: parse without it
    const zero = /^([a-z+]+:\/\/(?:\[[^\]]*\]|[^/:?#]*)):0+(?=[/?#]|$)/i.exec(l);
    try {
      u = parseUri(zero === null ? l : (zero[1] as string) + l.slice(zero[0].length));
    } catch (e) {
      if (e instanceof CoapUriError) throw new UsageError(`--listen ${l}: ${e.message}`);
      throw e;
    }
    const transport = u.transport;
    if (seen.has(transport)) throw new UsageError(`--listen: one listener per transport (${transport} given twice)`);
    seen.add(transport);
    if (u.secure && !secured) throw new UsageError(`--listen ${l}: a secured listener needs --psk or --cert/--key`);
    out.push({ uri: l, transport, host: u.host, port: zero === null ? u.port : 0, secure: u.secure });
  }
  return out;
}

/** The URI scheme of a listener's transport. */
export const LISTEN_SCHEME: Readonly<Record<ListenTransport, string>> = { udp: 'coap', tcp: 'coap+tcp', tls: 'coaps+tcp', ws: 'coap+ws', wss: 'coaps+ws', dtls: 'coaps' };

/**
 * Runs until SIGINT or SIGTERM, then `close()` (given 2 s); resolves with exit status 0, or
 * 3 when closing failed.
 */
export function closeOnSignal(io: { readonly stdout: { write(s: string): unknown }; readonly stderr: { write(s: string): unknown } }, close: () => unknown): Promise<number> {
  return new Promise<number>((resolveExit) => {
    let closing = false;
    const stop = (sig: NodeJS.Signals): void => {
      if (closing) return;
      closing = true;
      io.stdout.write(`turbocoap: ${sig}, closing\n`);
      const force = setTimeout(() => resolveExit(0), 2000);
      force.unref();
      Promise.resolve()
        .then(close)
        .then(
          () => {
            clearTimeout(force);
            resolveExit(0);
          },
          (e: unknown) => {
            clearTimeout(force);
            io.stderr.write(`turbocoap: close failed: ${(e as Error).message}\n`);
            resolveExit(3);
          },
        );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
