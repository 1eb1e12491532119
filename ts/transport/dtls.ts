/**
 * CoAP over DTLS 1.2 (`coaps://`, RFC 7252 §9): the UDP {@link Endpoint} over the native UDP
 * driver in DTLS mode (native/driver/dtls.c between the socket and the datagram driver, with
 * the OpenSSL inside Node). Everything above the records is the UDP path unchanged:
 * block-wise, Observe, deduplication and separate responses work as over `coap://`.
 *
 * Security comes in the factory's options as `security` ({@link TlsSettings}): a PSK
 * (client: identity + key; server: a table and/or a callback) and/or certificates. A handshake
 * that fails fails the requests waiting for it with a core status that is a TC_TLS_E_* code;
 * the client turns it into a CoapConnectionError (`HANDSHAKE`, `VERIFY`, `PSK`...: tlsFailure
 * in ts/errors.ts).
 *
 * Native only: under WebAssembly, opening a `coaps` driver throws CoapConnectionError
 * `TLS_UNSUPPORTED` naming the native addon it needs.
 *
 * @internal
 */
import type { BackendKind, DriverFactory, DriverListener, DriverOptions, EndpointOptions, TlsSettings } from '../driver/driver';
import { loadNativeAddon } from '../backend/native';
import { CoapConnectionError } from '../errors';
import { Endpoint } from './endpoint';
import { NativeUdpDriver, nativeUdpFactory, type UdpAddon } from './udp-native';
import type { BatchHandler, UdpDriverFactory } from './udp-records';
import { checkBackendKind, udpFactory } from './udp-select';

/** Bounds of a DTLS endpoint's session table (native/driver/dtls.h tcdt_limits); 0 = default. */
export interface DtlsLimits {
  /** Sessions in total (default 4096). */
  readonly maxSessions?: number;
  /** Sessions per IP address (default 1024). */
  readonly maxPerHost?: number;
  /** Handshakes in progress; when full the oldest is evicted (default 256). */
  readonly maxHalfOpen?: number;
  /** An open session idle this long (ms) is closed (default 600000). */
  readonly idleMs?: number;
  /** A handshake older than this (ms) is given up (default 30000 server, 15000 client). */
  readonly handshakeMs?: number;
  /** First handshake retransmission timeout (ms), doubling (default 1000, RFC 6347). */
  readonly retransmitMs?: number;
}

/** Worst-case DTLS 1.2 record overhead: header 13 + explicit IV 16 + HMAC-SHA384 48 + padding 16
 *  (AES-CCM-8, the RFC 7925 suite, needs 29). The CoAP message size is lowered by it. */
export const DTLS_RECORD_OVERHEAD = 93;

/** The addon's DTLS security object (native/binding/udp.c dtls_attach) from TlsSettings. */
function addonSecurity(s: TlsSettings | undefined, role: 'server' | 'client', mtu: number, lim: DtlsLimits | undefined): object {
  const sec = s ?? {};
  if (role === 'server' && sec.pskTable === undefined && sec.pskCallback === undefined && (sec.certPem === undefined || sec.keyPem === undefined)) {
    throw new CoapConnectionError('TLS_CONFIG', 'TLS_CONFIG: a DTLS server needs a PSK (psk) or a certificate and key (cert, key)');
  }
  const table = sec.pskTable ?? new Map<string, Uint8Array>();
  return {
    certPem: sec.certPem,
    keyPem: sec.keyPem,
    caPem: sec.caPem,
    requestCert: sec.requestCert ?? false,
    rejectUnauthorized: sec.rejectUnauthorized ?? (role === 'client' ? true : sec.requestCert === true),
    pskIdentity: sec.pskIdentity,
    pskKey: sec.pskKey,
    pskIdentities: [...table.keys()],
    pskKeys: [...table.values()],
    pskCallback: sec.pskCallback,
    servername: sec.servername,
    mtu,
    retransmitMs: lim?.retransmitMs ?? 0,
    maxSessions: lim?.maxSessions ?? 0,
    maxPerHost: lim?.maxPerHost ?? 0,
    maxHalfOpen: lim?.maxHalfOpen ?? 0,
    idleMs: lim?.idleMs ?? 0,
    handshakeMs: lim?.handshakeMs ?? 0,
  };
}

/** Throws CoapConnectionError TLS_UNSUPPORTED unless `backend` resolves to the native addon. */
export function checkDtlsBackend(backend: BackendKind | undefined): void {
  checkBackendKind(backend);
  let kind: BackendKind = 'wasm';
  let why = '';
  try {
    kind = udpFactory(backend).kind;
  } catch (e) {
    why = `: ${(e as Error).message}`;
  }
  if (kind !== 'native') {
    throw new CoapConnectionError(
      'TLS_UNSUPPORTED',
      `TLS_UNSUPPORTED: coaps:// (DTLS) needs the native addon (turbocoap.node, with the OpenSSL inside Node); the WebAssembly backend has no DTLS${why}`,
    );
  }
}

/**
 * The `coaps` driver factory; `limits` bound its session table. Each driver is one UDP socket
 * with its own DTLS sessions (a client's servername applies to every peer it talks to).
 */
export function dtlsDriverFactory(limits?: DtlsLimits): DriverFactory {
  return (family: 4 | 6, backend: BackendKind | undefined, options: DriverOptions | undefined, listener: DriverListener, role: 'server' | 'client') => {
    checkDtlsBackend(backend);
    const mtu = Math.max(256, options?.maxMessageSize ?? 1280);
    const security = addonSecurity(options?.security, role, mtu, limits);
    const addon = loadNativeAddon() as UdpAddon;
    nativeUdpFactory(addon); // checks the addon's driver ABI
    if (addon.dtlsStats === undefined) {
      throw new CoapConnectionError('TLS_UNSUPPORTED', 'TLS_UNSUPPORTED: this build of the native addon has no DTLS (rebuild: npx node-gyp rebuild)');
    }
    const create: UdpDriverFactory = (fam: 4 | 6, config: Uint32Array, seed: Uint8Array, onBatch: BatchHandler) =>
      new NativeUdpDriver(addon, fam, config, seed, onBatch, { server: role === 'server', security });
    // the cookie exchange proved the peer's address: no Echo challenges over DTLS (RFC 9175
    // §2.4 is for unsecured endpoints) unless asked for
    const opts: EndpointOptions = { amplificationLimit: 0, ...options, maxMessageSize: mtu - DTLS_RECORD_OVERHEAD };
    try {
      return new Endpoint(family, 'native', opts, listener, role, { kind: 'native', create });
    } catch (e) {
      // the addon throws Error with code CONFIG (TC_TLS_E_CONFIG) and OpenSSL's reason
      if ((e as { code?: unknown }).code === 'CONFIG') throw new CoapConnectionError('TLS_CONFIG', `TLS_CONFIG: ${(e as Error).message}`, { cause: e });
      throw e;
    }
  };
}

/** The DTLS layer's counters of a `coaps` driver (undefined for other drivers). */
export function dtlsStats(driver: unknown): Record<string, number> | undefined {
  if (driver instanceof Endpoint && driver.driver instanceof NativeUdpDriver) return driver.driver.dtlsStats();
  return undefined;
}
