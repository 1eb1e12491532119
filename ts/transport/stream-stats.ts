/**
 * A stream host's stats struct (tcs_host_stats: SST_* byte offsets of ts/driver/abi.ts) as
 * a StreamStats object, field names in camelCase (SST_RX_BYTES -> rxBytes). No Node
 * built-ins.
 *
 * @internal
 */
import * as abi from '../driver/abi';
import type { StreamStats } from './stream-core';

const u64 = new Set(abi.STREAM_STATS_U64);
const fields: readonly (readonly [string, number])[] = Object.entries(abi)
  .filter(([k, v]) => k.startsWith('SST_') && typeof v === 'number')
  .map(([k, v]) => [k.slice(4).toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()), v as number] as const);

/** Reads every SST_* field of v (little-endian). */
export function streamStatsFromView(v: DataView): StreamStats {
  const out: StreamStats = {};
  for (const [name, at] of fields) out[name] = u64.has(at) ? Number(v.getBigUint64(at, true)) : v.getUint32(at, true);
  return out;
}
