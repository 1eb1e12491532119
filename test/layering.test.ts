// The TypeScript layering of issue 9: the transport-neutral layers depend on the Driver contract
// (ts/driver/driver.ts), never on ts/transport/**; one IP parser (ts/net/ip.ts, no Node built-ins:
// the browser bundle includes it); option numbers come from OptionNumber; the Driver's core
// statuses match the record ABI's.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Status } from '../ts/driver/driver';
import { canonicalIPv6, formatIPv4, formatIPv6, ipFamily, parseIPv4, parseIPv6, parseIp } from '../ts/net/ip';
import * as records from '../ts/transport/udp-records';

const root = resolve(__dirname, '..', 'ts');

/** Module specifiers of import / export-from statements (as in import-cycles.test.ts). */
function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out: string[] = [];
  const re = /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]/g;
  for (let m = re.exec(code); m !== null; m = re.exec(code)) out.push(m[1] as string);
  return out;
}
const src = (f: string): string => readFileSync(join(root, f), 'utf8');

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (name.endsWith('.ts')) out.push(relative(root, p));
  }
  return out;
}

const NEUTRAL = ['server.ts', 'client.ts', 'observe.ts', 'incoming.ts', 'outgoing.ts', 'router.ts', 'errors.ts', 'driver/driver.ts', 'net/ip.ts'];

describe('layering', () => {
  it.each(NEUTRAL)('%s imports nothing from ts/transport/', (f) => {
    const bad = specifiers(src(f)).filter((s) => /(^|\/)transport\//.test(s));
    expect(bad).toEqual([]);
  });

  it('the driver contract and the IP module import nothing (no Node built-ins)', () => {
    expect(specifiers(src('driver/driver.ts'))).toEqual([]);
    expect(specifiers(src('net/ip.ts'))).toEqual([]);
  });

  it('only the scheme tables (ts/transports.ts, ts/transports-browser.ts) reach into ts/transport/ from above them', () => {
    const above = files(root).filter((f) => !f.startsWith('transport/') && !f.startsWith('backend/') && !f.startsWith('generated/'));
    const reaching = above.filter((f) => specifiers(src(f)).some((s) => /^\.\/transport\//.test(s)));
    expect(reaching).toEqual(['transports-browser.ts', 'transports.ts']);
  });

  it('no other IP address parser or formatter in ts/ (and no node:net isIP)', () => {
    const offenders = files(root).filter((f) => {
      if (f === 'net/ip.ts') return false;
      const s = src(f);
      return /function (parseIPv[46]|formatIPv[46]|canonicalIPv6|isIPv[46]\w*)\s*\(/.test(s.replace(/export function isIPv[46]\(s: string\): boolean \{\n  return (parseIPv4\(s, new Uint8Array\(4\)\)|canonicalIPv6\(s\) !== undefined);\n\}/g, '')) ||
        /\bisIP\(/.test(s);
    });
    expect(offenders).toEqual([]);
  });

  it('no magic option numbers: OptionNumber everywhere', () => {
    const offenders: string[] = [];
    for (const f of files(root)) {
      if (f === 'options.ts' || f.startsWith('generated/')) continue;
      const s = src(f);
      for (const m of s.matchAll(/(const OPT_[A-Z_0-9]+ = \d+|number: \d+\b|\.option\(\d+\)|uintOption\(\d+\)|recordUint\([^)]*, \d+\))/g)) {
        offenders.push(`${f}: ${m[0]}`);
      }
    }
    expect(offenders.filter((o) => !o.includes('OPT_WORDS') && !o.includes('OPT_CAP'))).toEqual([]);
  });

  it("the Driver's core statuses are the record ABI's error codes", () => {
    expect(Status).toEqual({
      MESSAGE_TOO_LARGE: records.E_MESSAGE_TOO_LARGE,
      BUFFER_TOO_SMALL: records.E_BUFFER_TOO_SMALL,
      INVALID: records.E_INVALID,
      STALE: records.E_STALE,
      FULL: records.E_FULL,
      TIMEOUT: records.E_TIMEOUT,
      RESET: records.E_RESET,
      BAD_OPTION: records.E_BAD_OPTION,
      UNREACHABLE: records.E_UNREACHABLE,
    });
  });
});

describe('ts/net/ip', () => {
  const v4 = ['0.0.0.0', '127.0.0.1', '255.255.255.255', '192.168.1.10'];
  const v6 = ['::', '::1', '1::', 'fe80::1', '2001:db8::1:0:0:1', '1:2:3:4:5:6:7:8', '::ffff:192.0.2.1', '64:ff9b::192.0.2.33', 'FE80::A', '1:0:0:1::1'];
  const bad = ['', '1.2.3', '1.2.3.4.5', '01.2.3.4', '256.1.1.1', '1.2.3.-1', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', '12345::', '1:2:3:4:5:6:7::8:9', '::1.2.3', 'x'];

  it('agrees with node:net isIP on families', () => {
    for (const s of [...v4, ...v6, ...bad]) expect(ipFamily(s), s).toBe(isIP(s));
  });

  it('round-trips IPv4 and formats IPv6 canonically (RFC 5952)', () => {
    const b = new Uint8Array(16);
    for (const s of v4) {
      expect(parseIPv4(s, b)).toBe(true);
      expect(formatIPv4(b)).toBe(s);
    }
    const canon: Record<string, string> = {
      '2001:db8::1:0:0:1': '2001:db8::1:0:0:1',
      '1:0:0:1::1': '1:0:0:1::1',
      'FE80::A': 'fe80::a',
      '2001:db8:0:0:1:0:0:1': '2001:db8::1:0:0:1',
      '2001:0db8:0000:0000:0000:ff00:0042:8329': '2001:db8::ff00:42:8329',
      '::ffff:c000:0201': '::ffff:192.0.2.1',
      '1:0:2:3:4:5:6:7': '1:0:2:3:4:5:6:7',
    };
    for (const [i, o] of Object.entries(canon)) {
      expect(parseIPv6(i, b), i).toBe(true);
      expect(formatIPv6(b), i).toBe(o);
    }
    expect(canonicalIPv6('FE80::1%eth0')).toBe('fe80::1%eth0');
    expect(parseIp('fe80::1%eth0')).toEqual({ family: 6, bytes: Uint8Array.of(0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), zone: 'eth0' });
    expect(parseIp('nope')).toBeUndefined();
  });
});
