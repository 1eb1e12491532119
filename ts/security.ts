/**
 * Security options of the secured transports (TLS `coaps+tcp`, WSS `coaps+ws`, DTLS `coaps`)
 * in Node's own TLS vocabulary, and their conversion into the drivers' {@link TlsSettings}.
 */
import type { TlsSettings } from './driver/driver';
import { CoapConnectionError, invalidArgType, notBoolean } from './errors';
import { platform } from './platform';

/** PEM text: a string, or its bytes (a Buffer or Uint8Array). */
export type PemInput = string | Uint8Array;

/**
 * A server's pre-shared keys: identity -> key, or a function asked for an identity (return
 * undefined to refuse it). A key given as a string is used as its UTF-8 bytes (as libcoap's
 * `-k` takes it); give bytes for a binary key.
 */
export type ServerPsk = Readonly<Record<string, Uint8Array | string>> | ((identity: string) => Uint8Array | string | undefined);

/** A client's pre-shared key: the identity it sends and the key (a string is its UTF-8 bytes). */
export interface ClientPsk {
  readonly identity: string;
  readonly key: Uint8Array | string;
}

/** Certificate options shared by servers and clients (as in node:tls). */
export interface CertificateOptions {
  /** Own certificate chain (PEM). */
  readonly cert?: PemInput | readonly PemInput[];
  /** Own private key (PEM). */
  readonly key?: PemInput | readonly PemInput[];
  /** Trusted CA certificates (PEM; several in one text or an array). */
  readonly ca?: PemInput | readonly PemInput[];
}

/**
 * Raw Public Keys (RFC 7250): the own private key and the peers' public keys (PEM,
 * SubjectPublicKeyInfo) that are trusted, instead of certificates.
 */
export interface RawPublicKeyOptions {
  /** Own private key (PEM). */
  readonly key: PemInput;
  /** Trusted peer public keys (PEM). */
  readonly peerKeys?: readonly PemInput[];
}

/**
 * Options of features that need more than the OpenSSL inside Node 20 (3.0.x) has. Where the
 * OpenSSL in use lacks them, listen() and request() fail with CoapConnectionError
 * `TLS_UNSUPPORTED` naming the feature and the OpenSSL version.
 */
export interface FutureSecurityOptions {
  /** DTLS Connection ID (RFC 9146): sessions that survive a NAT rebinding (DTLS only). */
  readonly connectionId?: boolean;
  /** Raw Public Keys (RFC 7250) instead of certificates. */
  readonly rawPublicKey?: RawPublicKeyOptions;
}

/** Security of a TLS / WSS / DTLS listener. */
export interface ServerSecurityOptions extends CertificateOptions, FutureSecurityOptions {
  /** Ask clients for a certificate and verify it against `ca` (default false). */
  readonly requestCert?: boolean;
  /** With requestCert: refuse clients without a valid certificate (default true). */
  readonly rejectUnauthorized?: boolean;
  /** Pre-shared keys (TLS 1.2 / DTLS 1.2 PSK). */
  readonly psk?: ServerPsk;
}

/** Security of a client's secured requests (`coaps+tcp://`, `coaps+ws://`, `coaps://`). */
export interface ClientSecurityOptions extends CertificateOptions, FutureSecurityOptions {
  /** Pre-shared key (TLS 1.2 / DTLS 1.2 PSK) instead of certificates. */
  readonly psk?: ClientPsk;
  /** Verify the server's certificate against `ca` (or the system's CAs) and its name (default true). */
  readonly rejectUnauthorized?: boolean;
}

const utf8 = new TextEncoder();
const text = new TextDecoder();

function pem(name: string, v: PemInput | readonly PemInput[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  const one = (x: unknown): string => {
    if (typeof x === 'string') return x;
    if (x instanceof Uint8Array) return text.decode(x);
    throw invalidArgType(name, 'PEM text (a string, Buffer or Uint8Array) or an array of them', x);
  };
  if (Array.isArray(v)) return v.map(one).join('\n');
  return one(v);
}

function keyBytes(name: string, v: unknown): Uint8Array {
  if (typeof v === 'string') return utf8.encode(v);
  if (v instanceof Uint8Array) return v;
  throw invalidArgType(name, 'a string (its UTF-8 bytes) or a Uint8Array', v);
}

function bool(name: string, v: unknown): boolean | undefined {
  const e = notBoolean(name, v);
  if (e !== undefined) throw e;
  return v as boolean | undefined;
}

/** The OpenSSL version of this host ('unknown' where there is none, e.g. a browser). */
function opensslVersion(): string {
  const p = (globalThis as { process?: { versions?: Record<string, string | undefined> } }).process;
  return p?.versions?.openssl ?? 'unknown';
}

/**
 * Throws CoapConnectionError TLS_UNSUPPORTED for a requested feature that neither the OpenSSL in
 * use (OpenSSL has no DTLS Connection ID in any release; RPK came in 3.2) nor turbocoap's TLS
 * layer (native/driver/tls.c) provides. @internal
 */
export function checkFutureSecurity(o: FutureSecurityOptions): void {
  const ver = opensslVersion();
  const cid = bool('connectionId', o.connectionId);
  if (cid === true) {
    throw new CoapConnectionError(
      'TLS_UNSUPPORTED',
      `TLS_UNSUPPORTED: DTLS Connection ID (RFC 9146) needs an OpenSSL with DTLS CID support; this Node carries OpenSSL ${ver}`,
    );
  }
  if (o.rawPublicKey !== undefined) {
    if (o.rawPublicKey === null || typeof o.rawPublicKey !== 'object') throw invalidArgType('rawPublicKey', 'an object { key, peerKeys }', o.rawPublicKey);
    const major = /^(\d+)\.(\d+)/.exec(ver);
    const has = major !== null && (Number(major[1]) > 3 || (Number(major[1]) === 3 && Number(major[2]) >= 2));
    throw new CoapConnectionError(
      'TLS_UNSUPPORTED',
      has
        ? `TLS_UNSUPPORTED: Raw Public Keys (RFC 7250) are not implemented by turbocoap's TLS layer yet (OpenSSL ${ver} has them)`
        : `TLS_UNSUPPORTED: Raw Public Keys (RFC 7250) need OpenSSL 3.2 or later; this Node carries OpenSSL ${ver}`,
    );
  }
}

/** The driver settings of a listener's security options. @internal */
export function serverTls(o: ServerSecurityOptions): TlsSettings {
  checkFutureSecurity(o);
  const s: TlsSettings = {
    certPem: pem('cert', o.cert),
    keyPem: pem('key', o.key),
    caPem: pem('ca', o.ca),
    requestCert: bool('requestCert', o.requestCert),
    rejectUnauthorized: bool('rejectUnauthorized', o.rejectUnauthorized),
  };
  const psk = o.psk;
  if (typeof psk === 'function') {
    s.pskCallback = (identity) => {
      let k: unknown;
      try {
        k = psk(identity);
      } catch {
        return undefined;
      }
      return typeof k === 'string' ? utf8.encode(k) : k instanceof Uint8Array ? k : undefined;
    };
  } else if (psk !== undefined) {
    if (psk === null || typeof psk !== 'object') throw invalidArgType('psk', 'an object (identity -> key) or a function', psk);
    const table = new Map<string, Uint8Array>();
    for (const [id, k] of Object.entries(psk)) table.set(id, keyBytes(`psk[${JSON.stringify(id)}]`, k));
    s.pskTable = table;
  }
  return s;
}

/** The driver settings of a client's security options; `servername`: the URL's host when it is a name. @internal */
export function clientTls(o: ClientSecurityOptions, servername: string | undefined): TlsSettings {
  platform().checkClientSecurity?.(o);
  checkFutureSecurity(o);
  const s: TlsSettings = {
    certPem: pem('cert', o.cert),
    keyPem: pem('key', o.key),
    caPem: pem('ca', o.ca),
    rejectUnauthorized: bool('rejectUnauthorized', o.rejectUnauthorized) ?? true,
    servername,
  };
  const psk = o.psk;
  if (psk !== undefined) {
    if (psk === null || typeof psk !== 'object' || typeof psk.identity !== 'string') throw invalidArgType('psk', 'an object { identity: string, key }', psk);
    s.pskIdentity = psk.identity;
    s.pskKey = keyBytes('psk.key', psk.key);
  }
  return s;
}

/** A string that tells different client security settings apart (connection pooling). @internal */
export function securityKey(s: TlsSettings | undefined): string {
  if (s === undefined) return '';
  const hex = (b: Uint8Array | undefined): string => (b === undefined ? '' : Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(''));
  return JSON.stringify([s.certPem ?? '', s.keyPem ?? '', s.caPem ?? '', s.rejectUnauthorized !== false, s.pskIdentity ?? '', hex(s.pskKey), s.servername ?? '']);
}
