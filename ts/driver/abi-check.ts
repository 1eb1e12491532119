/**
 * The load-time check that a backend was compiled from the same ABI declaration
 * (native/driver/abi.h) as ts/driver/abi.ts was generated from.
 *
 * @internal
 */
import { ABI_HASH, ABI_LAYOUT } from './abi';

/**
 * The first index where `layout` (what a backend reports, tca_layout) differs from
 * ABI_LAYOUT, or -1 when they agree (the hash too).
 */
export function abiMismatch(hash: number, layout: ArrayLike<number> | undefined): number {
  if (layout === undefined) return 0;
  const n = Math.max(layout.length, ABI_LAYOUT.length);
  for (let i = 0; i < n; i++) if (layout[i] !== ABI_LAYOUT[i]) return i;
  return hash >>> 0 === ABI_HASH ? -1 : n;
}

/** Throws when a backend's layout differs from ts/driver/abi.ts. */
export function checkAbi(what: string, hash: number, layout: ArrayLike<number> | undefined, rebuild: string): void {
  const at = abiMismatch(hash, layout);
  if (at >= 0) {
    throw new Error(
      `turbocoap: ${what} driver ABI mismatch (0x${(hash >>> 0).toString(16)} vs 0x${ABI_HASH.toString(16)}, ` +
        `layout word ${at}); rebuild it: ${rebuild}`,
    );
  }
}
