/**
 * What the addon's hosts (udp-native.ts, stream-native.ts) share on the JS side: errno codes
 * as errors, the addon's address tuples as SocketAddress, and the batch callback that splits
 * one transferred buffer into record words and data.
 *
 * @internal
 */
import { getSystemErrorName } from 'node:util';
import type { SocketAddress } from '../driver/driver';
import { CoapNetworkError } from '../errors';

/** An Error for a negative libuv / errno code. */
export function sysError(rc: number, what: string): CoapNetworkError {
  let name = 'EIO';
  try {
    name = getSystemErrorName(rc);
  } catch {
    /* not a known errno */
  }
  return new CoapNetworkError(name, `${what}: ${name}`);
}

/** An address the addon answers as [family, port, text], or throws its negative errno. */
export function nativeAddress(a: [number, number, string] | number): SocketAddress {
  if (typeof a === 'number') throw sysError(a, 'address');
  return { address: a[2], family: a[0] === 4 ? 'IPv4' : 'IPv6', port: a[1] };
}

/**
 * The addon's batch callback for `onBatch`: record words before `base`, data from the start
 * of the same buffer. The addon holds it weakly while its socket is unref'd: the host object
 * must keep it reachable for as long as it lives.
 */
export function nativeBatchCallback(
  onBatch: (u32: Uint32Array, u8: Uint8Array, count: number, base: number) => void,
): (ab: ArrayBuffer, count: number, base: number) => void {
  return (ab, count, base) => onBatch(new Uint32Array(ab, 0, base >>> 2), new Uint8Array(ab), count, base);
}
