#!/usr/bin/env node
/**
 * The `turbocoap` command line:
 *
 * ```
 * turbocoap get|post|put|delete|fetch|patch|ipatch <uri> [options]
 * turbocoap serve [--listen URI]... [--port 5683] [--host ::] [--psk ID:KEY] [--cert F --key F [--ca F]]
 * turbocoap bench <uri> [coap-bench options...]
 * turbocoap backend
 * ```
 *
 * Exit status: 0 for a 2.xx response, 1 for 4.xx / 5.xx, 2 for a usage
 * error, 3 for a timeout, reset or network error (a refused connection, a TLS handshake or
 * certificate verification failure included).
 *
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
// First: Node's platform (./cli-proxy loads the client, whose global Agent needs it).
import './platform-node';
import { LISTEN_SCHEME, UsageError, closeOnSignal, hostPort, parseListens, parsePsk, readPem } from './cli-args';
import { PROXY_HELP, proxyCommand } from './cli-proxy';
import {
  ContentFormat,
  OptionNumber,
  contentFormatName,
  contentFormatNumber,
  codeName,
  codeToString,
  decodeUint,
  encode,
  encodeUint,
  optionInfo,
  optionNumber,
  parseUri,
  request,
  observe,
  uriToOptions,
  CoapBlockwiseError,
  CoapObserveError,
  CoapTimeoutError,
  CoapResetError,
  CoapNetworkError,
  CoapConnectionError,
  CoapAbortError,
  CoapUriError,
  CoapEncodeError,
  METHOD_CODES,
  backend,
} from './index';
import { nativeFallbackReason } from './backend/select';
import type { CoapMessage, CoapOption, CoapResponse, ClientSecurityOptions, ListenOptions, Method, RequestOptions, TransferProgress } from './index';
import { createDemoServer } from './demo';

/** Exit status: success (a 2.xx response). */
export const EXIT_OK = 0;
/** Exit status: the server answered 4.xx or 5.xx. */
export const EXIT_ERROR_RESPONSE = 1;
/** Exit status: bad command line. */
export const EXIT_USAGE = 2;
/** Exit status: timeout, reset or network error (refused connections, TLS handshake and certificate failures too). */
export const EXIT_NETWORK = 3;

/** A command-line error: printed with a hint to `--help`, exit status 2. */

const METHOD_NAMES: Readonly<Record<string, Method>> = {
  get: 'GET',
  post: 'POST',
  put: 'PUT',
  delete: 'DELETE',
  fetch: 'FETCH',
  patch: 'PATCH',
  ipatch: 'iPATCH',
};

const MAIN_HELP = `usage: turbocoap <command> [options]

commands:
  get|post|put|delete|fetch|patch|ipatch <uri>   send one request and print the response
  serve [--listen URI]... [...]                   run the demo server (UDP, TCP, TLS, WebSockets, DTLS)
  proxy --listen URI [--to URI] [--allow HOST]    run a cross-transport proxy
  bench <uri> [coap-bench options...]             load-test a CoAP server with coap-bench
  backend                                         print the backend in use: native or wasm
  help [command]                                  help for a command

options: -h, --help (also per command), -V, --version (version and backend)

Run 'turbocoap <command> --help' for a command's options.
Exit status: 0 on 2.xx, 1 on 4.xx/5.xx, 2 on usage errors, 3 on timeout/reset/network errors.
`;

const REQUEST_HELP = `usage: turbocoap <get|post|put|delete|fetch|patch|ipatch> <uri> [options]

Sends one request and prints the payload of a 2.xx response on stdout, or the code
and its name (e.g. "4.04 Not Found") on stderr. URIs: coap:// (UDP), coaps:// (DTLS,
native backend), coap+tcp://, coaps+tcp:// (TLS), coap+ws://, coaps+ws:// (RFC 8323).

options:
  -p, --payload TEXT          request payload
  -f, --file FILE             request payload read from FILE ('-' = stdin)
  -t, --content-format FMT    Content-Format of the payload: a number or a media type
                              (e.g. 0, 50, text/plain, application/json)
  -A, --accept FMT            Accept option: a number or a media type
  -N, --non                   send a NON request (default CON)
  -O, --option NUM,VALUE      add an option (repeatable); NUM is a number or a name
                              (e.g. Uri-Host); VALUE is read per the option's format:
                              uint: decimal; string: text; opaque: text, or hex with 0x;
                              empty options take no value ("-O 5" or "-O If-None-Match")
      --timeout MS            give up after MS milliseconds (default: the RFC 7252
                              transmission limits)
  -v, --verbose               dump the request and the response on stderr: type, MID,
                              code, token, options by name, payload (the request's
                              MID shows when the response is piggybacked; a separate
                              or NON response has its own MID)
  -o, --output FILE           save the response body to FILE instead of printing it
  -s, --observe SECONDS       get/fetch: observe the resource (RFC 7641) for SECONDS,
                              printing every notification's payload on a line of its
                              own (exit 0 when the time is up)
  -b, --block-size SIZE       block size of block-wise transfers (RFC 7959): 16, 32,
                              64, 128, 256, 512 or 1024 (default 1024); payloads and
                              bodies of any size move block by block
      --max-body BYTES        largest response body accepted (default 1048576)
      --progress              report the progress of block-wise transfers on stderr:
                              on a terminal one line per direction, updated in place;
                              otherwise one final line per direction
      --psk IDENTITY:KEY      secured schemes: pre-shared key (the key's UTF-8 bytes;
                              0x... for hex)
      --ca FILE               secured schemes: trusted CA certificates (PEM)
      --cert FILE             secured schemes: client certificate (PEM)
      --key FILE              secured schemes: client private key (PEM)
      --insecure              secured schemes: do not verify the server's certificate
  -h, --help                  this help

exit status: 0 on 2.xx, 1 on 4.xx/5.xx, 2 on usage errors, 3 on timeout/reset/network
errors (a refused connection, a TLS/DTLS handshake or certificate verification failure).
`;

const SERVE_HELP = `usage: turbocoap serve [--listen URI]... [--port PORT] [--host HOST] [security] [--amplification-limit N]

Runs the demo server until SIGINT or SIGTERM, its resources on every listener.

options:
  --listen URI               listen on URI (repeatable, one per transport), e.g.
                             coap://[::]:5683, coap+tcp://127.0.0.1:5683,
                             coaps+tcp://127.0.0.1:5684, coap+ws://0.0.0.0:8080,
                             coaps+ws://..., coaps://... (DTLS); default coap://[::]:5683
  --port PORT                without --listen: UDP port (default 5683; 0 picks a free one)
  --host HOST                without --listen: address to bind (default ::, all IPv6 and
                             IPv4 addresses)
  --psk IDENTITY:KEY         secured listeners: a pre-shared key (repeatable; the key's
                             UTF-8 bytes, 0x... for hex)
  --cert FILE --key FILE     secured listeners: certificate chain and private key (PEM)
  --ca FILE                  secured listeners: ask clients for a certificate and verify it
                             against these CAs (PEM)
  --amplification-limit N    RFC 9175 amplification defence: a response to a client not
                             yet verified is at most N times its request, else 4.01 with
                             Echo (default 3; 0 turns it off, for clients that do not
                             answer Echo, such as npm coap)
  -h, --help                 this help

resources:
  GET  /hello                      a greeting (text/plain)
  GET  /time                       the current time, ISO 8601 (Max-Age 1); observable,
                                   a notification every second
  GET  /large                      1,048,576 bytes (byte i = i % 251), block-wise
  GET  /store                      the stored keys (link-format)
  GET|PUT|POST|DELETE /store/KEY   an in-memory store with ETags; PUT replaces,
                                   POST appends; bounded (4.13 for a value too large,
                                   5.03 when full)
  GET  /.well-known/core           resource discovery (RFC 6690)
`;

const BACKEND_HELP = `usage: turbocoap backend

Prints the backend this installation runs on: "native" (the Node addon) or "wasm"
(WebAssembly: the addon is not built or cannot load here, or TURBOCOAP_BACKEND=wasm).
When it fell back to WebAssembly, stderr says why the addon did not load.
Exit status 1 when the backend TURBOCOAP_BACKEND forces cannot load.
`;

const BENCH_HELP = `usage: turbocoap bench <uri> [coap-bench options...]

Runs the coap-bench load generator built with this package
(build/Release/coap-bench) and passes every argument to it unchanged.
Its options:
`;

// ---------------------------------------------------------------------------
// argument parsing (node:util parseArgs, strict: unknown options, missing values and values
// given to flags are usage errors; an option given twice is one too, unless it repeats)

/** One option of a command: its long name is the key of the table. */
interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
}

type FlagTable = Readonly<Record<string, FlagSpec>>;

interface Parsed {
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  readonly positionals: readonly string[];
}

/** A parseArgs error message as a usage error: its text on one line, first letter lower case. */
function usageFromParseArgs(e: Error & { code?: string }): UsageError {
  let text = e.message.replace(/\s*\n\s*/g, ' ').trim();
  // "Unknown option '--x'. To specify a positional argument starting with a '-', ...": the
  // first sentence says it.
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') text = text.replace(/^(Unknown option '[^']*')\..*$/, '$1');
  return new UsageError(text.charAt(0).toLowerCase() + text.slice(1));
}

function parseCommandLine(argv: readonly string[], table: FlagTable): Parsed {
  let r;
  try {
    r = parseArgs({ args: [...argv], options: table, strict: true, allowPositionals: true, tokens: true });
  } catch (e) {
    if (typeof (e as { code?: unknown }).code === 'string' && (e as { code: string }).code.startsWith('ERR_PARSE_ARGS')) {
      throw usageFromParseArgs(e as Error);
    }
    throw e;
  }
  const seen = new Set<string>();
  for (const t of r.tokens ?? []) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name) && table[t.name]?.multiple !== true) throw new UsageError(`option ${t.rawName} given twice`);
    seen.add(t.name);
  }
  return { values: r.values, positionals: r.positionals };
}

/** A string option's value. */
function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A repeatable string option's values. */
function strs(p: Parsed, name: string): string[] {
  const v = p.values[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** Whether a boolean option was given. */
function has(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

const HELP_FLAGS: FlagTable = {
  help: { type: 'boolean', short: 'h' },
};

const REQUEST_FLAGS: FlagTable = {
  ...HELP_FLAGS,
  payload: { type: 'string', short: 'p' },
  file: { type: 'string', short: 'f' },
  'content-format': { type: 'string', short: 't' },
  accept: { type: 'string', short: 'A' },
  non: { type: 'boolean', short: 'N' },
  option: { type: 'string', short: 'O', multiple: true },
  timeout: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  output: { type: 'string', short: 'o' },
  observe: { type: 'string', short: 's' },
  'block-size': { type: 'string', short: 'b' },
  'max-body': { type: 'string' },
  progress: { type: 'boolean' },
  psk: { type: 'string' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  insecure: { type: 'boolean' },
};

const SERVE_FLAGS: FlagTable = {
  ...HELP_FLAGS,
  port: { type: 'string', short: 'P' },
  host: { type: 'string', short: 'H' },
  'amplification-limit': { type: 'string' },
  listen: { type: 'string', multiple: true },
  psk: { type: 'string', multiple: true },
  cert: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string' },
};

export { parsePsk };

/** The client security options of --psk / --ca / --cert / --key / --insecure. */
function clientSecurity(p: Parsed): ClientSecurityOptions {
  const psk = str(p, 'psk');
  const ca = str(p, 'ca');
  const cert = str(p, 'cert');
  const key = str(p, 'key');
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('give --cert and --key together');
  return {
    ...(psk === undefined ? {} : { psk: parsePsk(psk) }),
    ...(ca === undefined ? {} : { ca: readPem(ca, '--ca') }),
    ...(cert === undefined ? {} : { cert: readPem(cert, '--cert') }),
    ...(key === undefined ? {} : { key: readPem(key, '--key') }),
    ...(has(p, 'insecure') ? { rejectUnauthorized: false } : {}),
  };
}

/** A Content-Format argument: a number 0..65535 or a media type (`text/plain`, `application/json`, ...). */
export function parseContentFormat(s: string, what = 'content format'): number {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n > 65535) throw new UsageError(`${what} ${s} is out of range (0..65535)`);
    return n;
  }
  const n = contentFormatNumber(s);
  if (n !== undefined) return n;
  // Also accept the ContentFormat constant names: json, Cbor, LinkFormat, ...
  const key = Object.keys(ContentFormat).find((k) => k.toLowerCase() === s.toLowerCase().replace(/[-_]/g, ''));
  if (key !== undefined) return ContentFormat[key as keyof typeof ContentFormat];
  throw new UsageError(`unknown ${what} ${JSON.stringify(s)} (use a number or a media type such as application/json)`);
}

/** `-O NUM,VALUE`: the option number (or name) and its value encoded per the registry's format. */
export function parseOptionArg(s: string): CoapOption {
  const comma = s.indexOf(',');
  const head = comma < 0 ? s : s.slice(0, comma);
  const text = comma < 0 ? undefined : s.slice(comma + 1);
  let number: number;
  if (/^\d+$/.test(head)) {
    number = Number(head);
    if (number < 1 || number > 65535) throw new UsageError(`option number ${head} is out of range (1..65535)`);
  } else {
    const n = optionNumber(head);
    if (n === undefined) throw new UsageError(`unknown option name ${JSON.stringify(head)}`);
    number = n;
  }
  const info = optionInfo(number);
  const format = info?.format ?? 'opaque';
  let value: Uint8Array;
  if (text === undefined || text === '') {
    value = new Uint8Array(0);
  } else if (format === 'empty') {
    throw new UsageError(`option ${info?.name ?? number} is empty: give no value`);
  } else if (format === 'uint') {
    if (!/^\d+$/.test(text)) throw new UsageError(`option ${info?.name ?? number} takes an unsigned integer, not ${JSON.stringify(text)}`);
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n > 0xffffffff) throw new UsageError(`option ${info?.name ?? number} value ${text} is too large`);
    value = encodeUint(n);
  } else if (format === 'opaque' && /^0x([0-9a-fA-F]{2})*$/.test(text)) {
    value = new Uint8Array(Buffer.from(text.slice(2), 'hex'));
  } else {
    value = new TextEncoder().encode(text);
  }
  if (info !== undefined && (value.length < info.minLength || value.length > info.maxLength)) {
    throw new UsageError(`option ${info.name} must be ${info.minLength}..${info.maxLength} bytes, not ${value.length}`);
  }
  return { number, value };
}

// ---------------------------------------------------------------------------
// message formatting (-v)

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

const BLOCK_OPTIONS = new Set<number>([OptionNumber.Block2, OptionNumber.Block1, OptionNumber.QBlock1, OptionNumber.QBlock2]);

/** An option value for humans, per its registered format (and a few well-known meanings). */
export function formatOptionValue(number: number, value: Uint8Array): string {
  const info = optionInfo(number);
  const format = info?.format ?? 'opaque';
  if (format === 'empty') return value.length === 0 ? '(empty)' : `0x${hex(value)}`;
  if (format === 'uint') {
    if (value.length > 6) return `0x${hex(value)}`;
    const n = decodeUint(value);
    if (number === OptionNumber.ContentFormat || number === OptionNumber.Accept) {
      const name = contentFormatName(n);
      return name === undefined ? String(n) : `${n} (${name})`;
    }
    if (BLOCK_OPTIONS.has(number)) return `${n} (block ${Math.floor(n / 16)}, ${(n & 8) !== 0 ? 'more' : 'last'}, size ${1 << ((n & 7) + 4)})`;
    return String(n);
  }
  if (format === 'string') {
    try {
      return JSON.stringify(new TextDecoder('utf-8', { fatal: true }).decode(value));
    } catch {
      return `0x${hex(value)} (not UTF-8)`;
    }
  }
  return value.length === 0 ? '0x (empty)' : `0x${hex(value)}`;
}

function isPrintable(b: Uint8Array): boolean {
  try {
    const s = new TextDecoder('utf-8', { fatal: true }).decode(b);
    // eslint-disable-next-line no-control-regex
    return !/[\u0000-\u0008\u000e-\u001f\u007f]/.test(s);
  } catch {
    return false;
  }
}

/**
 * A multi-line dump of one message: `prefix` then type, MID, code and name,
 * token in hex, then one line per option (name, number, value) and the
 * payload (text, or hex when binary).
 */
export function formatMessage(prefix: string, msg: CoapMessage, size?: number, peer?: string, tokenUnknown = false): string {
  const name = codeName(msg.code);
  const lines: string[] = [];
  const mid = msg.messageId === undefined ? '  MID ?' : `  MID ${msg.messageId} (0x${msg.messageId.toString(16).padStart(4, '0')})`;
  const token = tokenUnknown ? '?' : msg.token.length === 0 ? '(none)' : `0x${hex(msg.token)}`;
  lines.push(
    `${prefix} ${msg.type ?? '   '} ${msg.code}${name === undefined ? '' : ` ${name}`}${mid}  token ${token}` +
      `${size === undefined ? '' : `  ${size} bytes`}${peer === undefined ? '' : `  ${peer}`}`,
  );
  for (const o of msg.options) {
    const info = optionInfo(o.number);
    lines.push(`${prefix}   ${info?.name ?? 'Unknown'} (${o.number}): ${formatOptionValue(o.number, o.value)}`);
  }
  if (msg.payload.length > 0) {
    if (isPrintable(msg.payload)) {
      const text = new TextDecoder().decode(msg.payload);
      const shown = text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
      lines.push(`${prefix}   payload (${msg.payload.length} bytes): ${JSON.stringify(shown)}`);
    } else {
      const shown = msg.payload.length > 512 ? `${hex(msg.payload.subarray(0, 512))}…` : hex(msg.payload);
      lines.push(`${prefix}   payload (${msg.payload.length} bytes): 0x${shown}`);
    }
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------
// commands

interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * A 2.xx response body on stdout. Text (UTF-8 without control characters) always ends in a
 * newline, added when the body has none, as coap-client and HTTPie print it: the shell prompt
 * and line-based tools need it. A binary body goes out byte for byte when stdout is a file or a
 * pipe (`> file` keeps it exact, as `-o` does); on a terminal a newline follows it. An empty
 * body prints nothing.
 */
function writeBody(out: Io['stdout'], body: Uint8Array): void {
  if (body.length === 0) return;
  out.write(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  if (body[body.length - 1] !== 0x0a && (out.isTTY === true || isPrintable(body))) out.write('\n');
}

/**
 * `--progress` on stderr. On a terminal: one line per direction, rewritten in place (\r) as
 * blocks arrive, ended with a newline when the transfer ends. Otherwise (a file, a pipe, a
 * log): nothing while blocks move, then one final line per direction, so logs hold no
 * per-block noise. A line reads `download 5000/1048576 bytes (0%)`.
 */
class ProgressReport {
  private readonly tty: boolean;
  private current: TransferProgress['direction'] | undefined;
  private readonly last = new Map<TransferProgress['direction'], string>();

  constructor(private readonly err: Io['stderr']) {
    this.tty = err.isTTY === true;
  }

  report(pr: TransferProgress): void {
    const pct = pr.total === undefined || pr.total === 0 ? '' : ` (${Math.floor((pr.bytes * 100) / pr.total)}%)`;
    const line = `${pr.direction} ${pr.bytes}${pr.total === undefined ? '' : `/${pr.total}`} bytes${pct}`;
    if (this.tty) {
      if (this.current !== undefined && this.current !== pr.direction) this.err.write('\n');
      this.err.write(`\r${line}\x1b[K`);
      this.current = pr.direction;
    } else {
      this.last.set(pr.direction, line);
    }
  }

  /** The transfer is over (done or failed): finish the line(s). */
  end(): void {
    if (this.tty) {
      if (this.current !== undefined) this.err.write('\n');
      this.current = undefined;
    } else {
      for (const line of this.last.values()) this.err.write(`${line}\n`);
      this.last.clear();
    }
  }
}

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

function parsePositiveInt(s: string, what: string, max = 0x7fffffff): number {
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > max) throw new UsageError(`${what} must be an integer in 1..${max}, not ${JSON.stringify(s)}`);
  return Number(s);
}

async function requestCommand(method: Method, argv: readonly string[], io: Io): Promise<number> {
  const p = parseCommandLine(argv, REQUEST_FLAGS);
  if (has(p, 'help')) {
    io.stdout.write(REQUEST_HELP);
    return EXIT_OK;
  }
  if (p.positionals.length !== 1) throw new UsageError(p.positionals.length === 0 ? 'missing <uri>' : `unexpected argument ${JSON.stringify(p.positionals[1])}`);
  const uri = p.positionals[0] as string;
  if (!/^coaps?(\+tcp|\+ws)?:\/\//i.test(uri)) {
    throw new UsageError(`only coap://, coaps://, coap+tcp://, coaps+tcp://, coap+ws:// and coaps+ws:// URIs are supported, not ${JSON.stringify(uri)}`);
  }
  const security = clientSecurity(p);

  let payload: Uint8Array | undefined;
  const text = str(p, 'payload');
  const file = str(p, 'file');
  if (text !== undefined && file !== undefined) throw new UsageError('give -p or -f, not both');
  if (text !== undefined) payload = new TextEncoder().encode(text);
  if (file !== undefined) {
    try {
      payload = file === '-' ? await readStdin() : new Uint8Array(readFileSync(file));
    } catch (e) {
      throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
    }
  }
  const ct = str(p, 'content-format');
  const accept = str(p, 'accept');
  const timeout = str(p, 'timeout');
  const options = strs(p, 'option').map(parseOptionArg);
  const verbose = has(p, 'verbose');
  const output = str(p, 'output');

  const confirmable = !has(p, 'non');
  const contentFormat = ct === undefined ? undefined : parseContentFormat(ct);
  const acceptFormat = accept === undefined ? undefined : parseContentFormat(accept, 'accept format');
  let target;
  try {
    target = parseUri(uri);
  } catch (e) {
    if (e instanceof CoapUriError) throw new UsageError(e.message);
    throw e;
  }
  const blockSize = str(p, 'block-size');
  const maxBody = str(p, 'max-body');
  const observeFor = str(p, 'observe');
  let blockSizeN: number | undefined;
  if (blockSize !== undefined) {
    blockSizeN = parsePositiveInt(blockSize, '--block-size', 1024);
    if ((blockSizeN & (blockSizeN - 1)) !== 0 || blockSizeN < 16) throw new UsageError(`--block-size must be 16, 32, 64, 128, 256, 512 or 1024, not ${blockSize}`);
  }
  const progress = has(p, 'progress') ? new ProgressReport(io.stderr) : undefined;
  const onProgress = progress === undefined ? undefined : (pr: TransferProgress): void => progress.report(pr);
  const reqOpts: RequestOptions = {
    method,
    confirmable,
    ...(payload === undefined ? {} : { payload }),
    ...(contentFormat === undefined ? {} : { contentFormat }),
    ...(acceptFormat === undefined ? {} : { accept: acceptFormat }),
    ...(options.length === 0 ? {} : { options }),
    ...(timeout === undefined ? {} : { timeout: parsePositiveInt(timeout, '--timeout') }),
    ...(blockSizeN === undefined ? {} : { blockSize: blockSizeN }),
    ...(maxBody === undefined ? {} : { maxBodySize: parsePositiveInt(maxBody, '--max-body', 2 ** 30) }),
    ...(onProgress === undefined ? {} : { onProgress }),
    ...security,
  };
  if (observeFor !== undefined) {
    if (method !== 'GET' && method !== 'FETCH') throw new UsageError('--observe works with get and fetch only');
    return observeCommand(uri, reqOpts, parsePositiveInt(observeFor, '--observe', 2147483), io);
  }

  const t0 = Date.now();
  let res: CoapResponse | undefined;
  let failure: unknown;
  try {
    res = await request(uri, reqOpts);
  } catch (e) {
    failure = e;
  }
  progress?.end();

  if (verbose) {
    // The request as it went out: the client sends the URI's options (RFC 7252 §6.4),
    // Content-Format, Accept and the -O options, sorted by number; the core assigns the
    // Message ID and the token. The token comes back in the response, and so does the
    // Message ID when the response is piggybacked in the ACK.
    const reqOptions: CoapOption[] = uriToOptions(target).map((o) => ({ number: o.number, value: o.value }));
    if (contentFormat !== undefined) reqOptions.push({ number: OptionNumber.ContentFormat, value: encodeUint(contentFormat) });
    if (acceptFormat !== undefined) reqOptions.push({ number: OptionNumber.Accept, value: encodeUint(acceptFormat) });
    reqOptions.push(...options);
    reqOptions.sort((a, b) => a.number - b.number);
    const sent: CoapMessage = {
      type: confirmable ? 'CON' : 'NON',
      code: codeToString(METHOD_CODES[method]),
      token: res?.token ?? new Uint8Array(8),
      options: reqOptions,
      payload: payload ?? new Uint8Array(0),
    };
    const mid = res !== undefined && res.type === 'ACK' ? res.messageId : undefined;
    const size = encode({ ...sent, messageId: mid ?? 0 }).length;
    const to = `to ${hostPort(target.host, target.port)}`;
    io.stderr.write(formatMessage('>', { ...sent, ...(mid === undefined ? {} : { messageId: mid }) }, size, to, res === undefined));
    const bs = blockSizeN ?? 1024;
    if (payload !== undefined && payload.length > bs) {
      io.stderr.write(`>   (sent block-wise, RFC 7959: Block1 blocks of ${bs} bytes or the smaller size the server asked for; shown as one message)\n`);
    }
    if (res !== undefined) {
      const got: CoapMessage = { type: res.type, messageId: res.messageId, code: res.code, token: res.token, options: res.options, payload: res.payload };
      const note = confirmable && res.type !== 'ACK' ? '  (separate response)' : '';
      io.stderr.write(formatMessage('<', got, encode(got).length, `from ${hostPort(res.remote.address, res.remote.port)}  after ${Date.now() - t0} ms${note}`));
      if (res.option(OptionNumber.Block2) !== undefined) io.stderr.write('<   (received block-wise, RFC 7959: the first block\'s message with the whole body)\n');
    }
  }

  if (res === undefined) {
    const e = failure;
    if (e instanceof CoapTimeoutError) {
      io.stderr.write(`turbocoap: timeout: no response from ${uri}${timeout === undefined ? '' : ` within ${timeout} ms`}\n`);
      return EXIT_NETWORK;
    }
    if (e instanceof CoapResetError) {
      io.stderr.write('turbocoap: the server answered with a Reset (RST)\n');
      return EXIT_NETWORK;
    }
    if (e instanceof CoapConnectionError) {
      io.stderr.write(`turbocoap: connection failed: ${e.message}\n`);
      return EXIT_NETWORK;
    }
    if (e instanceof CoapNetworkError) {
      io.stderr.write(`turbocoap: network error: ${e.message}\n`);
      return EXIT_NETWORK;
    }
    if (e instanceof CoapAbortError) {
      io.stderr.write('turbocoap: aborted\n');
      return EXIT_NETWORK;
    }
    if (e instanceof CoapBlockwiseError) {
      io.stderr.write(`turbocoap: block-wise transfer failed: ${e.message}\n`);
      return e.responseCode === undefined ? EXIT_NETWORK : EXIT_ERROR_RESPONSE;
    }
    if (e instanceof CoapUriError) throw new UsageError(e.message);
    if (e instanceof CoapEncodeError) throw new UsageError(`the request cannot be sent: ${e.message}`);
    throw e;
  }

  const ok = res.code.startsWith('2.');
  const body = res.payload;
  if (ok) {
    if (output !== undefined) {
      try {
        writeFileSync(output, body);
      } catch (e) {
        io.stderr.write(`turbocoap: cannot write ${output}: ${(e as Error).message}\n`);
        return EXIT_USAGE;
      }
    } else {
      writeBody(io.stdout, body);
    }
    return EXIT_OK;
  }
  const name = codeName(res.code);
  let line = `${res.code}${name === undefined ? '' : ` ${name}`}`;
  if (body.length > 0 && isPrintable(body)) {
    // A diagnostic payload (RFC 7252 §5.5.2), unless it only repeats the name.
    const diag = new TextDecoder().decode(body).trim();
    if (diag !== '' && diag.toLowerCase() !== (name ?? '').toLowerCase()) line += `: ${diag}`;
  }
  io.stderr.write(`${line}\n`);
  if (output !== undefined && body.length > 0) {
    try {
      writeFileSync(output, body);
    } catch {
      /* the exit status already says it failed */
    }
  }
  return EXIT_ERROR_RESPONSE;
}

/**
 * `get -s SECONDS`: observes the resource, printing each notification's payload (or the
 * code of an error response) until the time is up.
 */
async function observeCommand(uri: string, o: RequestOptions, seconds: number, io: Io): Promise<number> {
  const signal = AbortSignal.timeout(seconds * 1000);
  const obs = observe(uri, {
    method: o.method === 'FETCH' ? 'FETCH' : 'GET',
    ...(o.confirmable === undefined ? {} : { confirmable: o.confirmable }),
    ...(o.payload === undefined ? {} : { payload: o.payload }),
    ...(o.contentFormat === undefined ? {} : { contentFormat: o.contentFormat }),
    ...(o.accept === undefined ? {} : { accept: o.accept }),
    ...(o.options === undefined ? {} : { options: o.options }),
    ...(o.timeout === undefined ? {} : { timeout: o.timeout }),
    ...(o.blockSize === undefined ? {} : { blockSize: o.blockSize }),
    ...(o.maxBodySize === undefined ? {} : { maxBodySize: o.maxBodySize }),
    ...(o.psk === undefined ? {} : { psk: o.psk }),
    ...(o.ca === undefined ? {} : { ca: o.ca }),
    ...(o.cert === undefined ? {} : { cert: o.cert }),
    ...(o.key === undefined ? {} : { key: o.key }),
    ...(o.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: o.rejectUnauthorized }),
    signal,
  });
  try {
    for await (const n of obs) {
      const body = n.payload;
      io.stdout.write(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
      if (body.length === 0 || body[body.length - 1] !== 0x0a) io.stdout.write('\n');
    }
  } catch (e) {
    if (e instanceof CoapAbortError && signal.aborted) return EXIT_OK; // the time is up
    if (e instanceof CoapObserveError) {
      const name = codeName(e.response.code);
      io.stderr.write(`${e.response.code}${name === undefined ? '' : ` ${name}`}\n`);
      return EXIT_ERROR_RESPONSE;
    }
    if (e instanceof CoapTimeoutError) {
      io.stderr.write(`turbocoap: timeout: no response from ${uri}\n`);
      return EXIT_NETWORK;
    }
    if (e instanceof CoapResetError || e instanceof CoapNetworkError || e instanceof CoapBlockwiseError) {
      io.stderr.write(`turbocoap: ${e.message}\n`);
      return EXIT_NETWORK;
    }
    if (e instanceof CoapUriError) throw new UsageError(e.message);
    throw e;
  }
  return EXIT_OK;
}

async function serveCommand(argv: readonly string[], io: Io): Promise<number> {
  const p = parseCommandLine(argv, SERVE_FLAGS);
  if (has(p, 'help')) {
    io.stdout.write(SERVE_HELP);
    return EXIT_OK;
  }
  if (p.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[0])}`);
  const listens = strs(p, 'listen');
  const portArg = str(p, 'port');
  const hostArg = str(p, 'host');
  if (listens.length > 0 && (portArg !== undefined || hostArg !== undefined)) throw new UsageError('--port and --host go without --listen (give the address in the --listen URI)');
  if (portArg !== undefined && (!/^\d+$/.test(portArg) || Number(portArg) > 65535)) throw new UsageError(`--port must be 0..65535, not ${JSON.stringify(portArg)}`);
  const amp = str(p, 'amplification-limit');
  if (amp !== undefined && (!/^\d+$/.test(amp) || Number(amp) > 1000)) {
    throw new UsageError(`--amplification-limit must be 0..1000, not ${JSON.stringify(amp)}`);
  }
  // security of the secured listeners
  const psks = strs(p, 'psk').map(parsePsk);
  const certFile = str(p, 'cert');
  const keyFile = str(p, 'key');
  const caFile = str(p, 'ca');
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('give --cert and --key together');
  const security: Partial<ListenOptions> = {
    ...(psks.length === 0 ? {} : { psk: Object.fromEntries(psks.map((k) => [k.identity, k.key])) }),
    ...(certFile === undefined ? {} : { cert: readPem(certFile, '--cert') }),
    ...(keyFile === undefined ? {} : { key: readPem(keyFile as string, '--key') }),
    ...(caFile === undefined ? {} : { ca: readPem(caFile, '--ca'), requestCert: true }),
  };
  const secured = psks.length > 0 || certFile !== undefined;
  const targets = parseListens(listens, secured).map((l) => ({
    uri: l.uri,
    opts: { transport: l.transport, host: l.host, port: l.port, ...(l.secure ? security : {}) } as ListenOptions,
  }));
  if (targets.length === 0) targets.push({ uri: 'coap://', opts: { transport: 'udp', host: hostArg ?? '::', port: Number(portArg ?? '5683') } });
  const server = createDemoServer(amp === undefined ? {} : { server: { amplificationLimit: Number(amp) } });
  for (const t of targets) {
    try {
      await server.listen(t.opts);
    } catch (e) {
      io.stderr.write(`turbocoap: cannot listen on ${t.opts.transport} ${t.opts.host} port ${t.opts.port}: ${(e as Error).message}\n`);
      await server.close();
      return EXIT_NETWORK;
    }
    const a = server.address(t.opts.transport);
    const scheme = LISTEN_SCHEME[t.opts.transport ?? 'udp'];
    io.stdout.write(`turbocoap demo server listening on ${scheme}://${hostPort(a.address, a.port)}/ (${server.backend ?? 'unknown'} backend)\n`);
  }
  return closeOnSignal(io, () => server.close());
}

/** `native backend` or `wasm backend` (loading it if need be), or why none loads. */
function backendKind(): string {
  try {
    return `${backend.kind} backend`;
  } catch (e) {
    return `no backend: ${String((e as Error)?.message ?? e).split('\n')[0].replace(/^turbocoap: /, '')}`;
  }
}

/** `turbocoap backend`: the backend on stdout; on stderr why the addon did not serve. */
function backendCommand(argv: readonly string[], io: Io): number {
  const p = parseCommandLine(argv, HELP_FLAGS);
  if (has(p, 'help')) {
    io.stdout.write(BACKEND_HELP);
    return EXIT_OK;
  }
  if (p.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[0])}`);
  let kind: string;
  try {
    kind = backend.kind;
  } catch (e) {
    // TURBOCOAP_BACKEND=native where the addon cannot load, or a bad TURBOCOAP_BACKEND.
    io.stderr.write(`${String((e as Error)?.message ?? e).replace(/^(turbocoap: )?/, 'turbocoap: ')}\n`);
    return 1;
  }
  io.stdout.write(`${kind}\n`);
  const forced = process.env.TURBOCOAP_BACKEND;
  if (forced !== undefined && forced !== '') io.stderr.write(`turbocoap: forced by TURBOCOAP_BACKEND=${forced}\n`);
  else if (kind === 'wasm') {
    const why = nativeFallbackReason();
    io.stderr.write(`turbocoap: the native addon did not load${why === undefined ? '' : ` (${why})`}; WebAssembly serves\n`);
  }
  return EXIT_OK;
}

/** Where `coap-bench` is: build/Release (or build/Debug) under the package root. */
export function coapBenchPath(): string | undefined {
  const root = resolve(__dirname, '..');
  for (const dir of ['Release', 'Debug']) {
    const p = join(root, 'build', dir, 'coap-bench');
    if (existsSync(p)) return p;
  }
  return undefined;
}

async function benchCommand(argv: readonly string[], io: Io): Promise<number> {
  const bin = coapBenchPath();
  const help = argv.length === 0 || argv[0] === '-h' || argv[0] === '--help';
  if (bin === undefined) {
    if (help) io.stdout.write(BENCH_HELP);
    io.stderr.write('turbocoap: coap-bench is not built (build/Release/coap-bench is missing; run `npm install` or `npx node-gyp rebuild` on Linux)\n');
    return EXIT_USAGE;
  }
  if (help) io.stdout.write(BENCH_HELP);
  const args = help ? ['--help'] : [...argv];
  return new Promise<number>((resolveExit) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(io.stdout, { end: false });
    child.stderr.pipe(io.stderr, { end: false });
    const forward = (sig: NodeJS.Signals): void => {
      child.kill(sig);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', (e) => {
      io.stderr.write(`turbocoap: cannot run ${bin}: ${e.message}\n`);
      resolveExit(EXIT_USAGE);
    });
    child.on('close', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolveExit(code ?? (signal === null ? 1 : 128 + (signalNumber(signal) ?? 0)));
    });
  });
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return osConstants.signals[sig];
}

/**
 * Runs the CLI on `argv` (without `node` and the script) and returns the exit
 * status. Output goes to `io` (default: the process streams).
 */
export async function main(argv: readonly string[], io: Io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === undefined || cmd === '-h' || cmd === '--help') {
      (cmd === undefined ? io.stderr : io.stdout).write(MAIN_HELP);
      return cmd === undefined ? EXIT_USAGE : EXIT_OK;
    }
    if (cmd === 'help') {
      const topic = rest[0];
      if (topic === undefined) io.stdout.write(MAIN_HELP);
      else if (topic === 'serve') io.stdout.write(SERVE_HELP);
      else if (topic === 'proxy') io.stdout.write(PROXY_HELP);
      else if (topic === 'bench') return await benchCommand(['--help'], io);
      else if (topic === 'backend') io.stdout.write(BACKEND_HELP);
      else if (METHOD_NAMES[topic.toLowerCase()] !== undefined) io.stdout.write(REQUEST_HELP);
      else throw new UsageError(`unknown command ${JSON.stringify(topic)}`);
      return EXIT_OK;
    }
    if (cmd === '-V' || cmd === '--version') {
      const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
      io.stdout.write(`turbocoap ${pkg.version} (${backendKind()})\n`);
      return EXIT_OK;
    }
    if (cmd === 'backend') return backendCommand(rest, io);
    const method = METHOD_NAMES[cmd.toLowerCase()];
    if (method !== undefined) return await requestCommand(method, rest, io);
    if (cmd === 'serve') return await serveCommand(rest, io);
    if (cmd === 'proxy') return await proxyCommand(rest, io);
    if (cmd === 'bench') return await benchCommand(rest, io);
    throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`turbocoap: ${e.message}\nRun 'turbocoap --help' for usage.\n`);
      return EXIT_USAGE;
    }
    io.stderr.write(`turbocoap: ${(e as Error)?.stack ?? String(e)}\n`);
    return EXIT_NETWORK;
  }
}

if (require.main === module) {
  // A reader that went away (`turbocoap get ... | head -c 10`) ends the output, not in a crash.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? EXIT_OK);
      throw e;
    });
  }
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // Leave once stdout and stderr have drained (a large body on a slow pipe takes a while;
    // exiting earlier would cut it), even if a handle lingers.
    let pending = 2;
    const flushed = (): void => {
      if (--pending === 0) process.exit(code);
    };
    process.stdout.write('', flushed);
    process.stderr.write('', flushed);
  });
}
