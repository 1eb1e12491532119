import { describe, expect, it } from 'vitest';
import { CoapError } from '../ts/errors';
import { OptionNumber, decodeUint, encodeUint } from '../ts/options';
import {
  CoapUriError,
  type CoapUriErrorReason,
  type UriOption,
  canonicalIPv6,
  defaultPort,
  encodePathSegment,
  encodeQueryArgument,
  formatUri,
  isIPv4,
  isIPv6,
  locationFromOptions,
  locationToOptions,
  optionsToUri,
  parseUri,
  pathFromOptions,
  queryFromOptions,
  schemeTransport,
  uriToOptions,
} from '../ts/uri';

const enc = new TextEncoder();
const dec = new TextDecoder();
const opt = (number: number, value: string | Uint8Array): UriOption => ({
  number,
  value: typeof value === 'string' ? enc.encode(value) : value,
});
/** Options as [number, text] pairs (Uri-Port as its number). */
const show = (opts: readonly UriOption[]): [number, string | number][] =>
  opts.map((o) => [o.number, o.number === OptionNumber.UriPort ? decodeUint(o.value) : dec.decode(o.value)]);

function expectUriError(fn: () => unknown, reason: CoapUriErrorReason): CoapUriError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(CoapUriError);
  expect(caught).toBeInstanceOf(CoapError);
  expect(caught).toBeInstanceOf(Error);
  const err = caught as CoapUriError;
  expect(err.reason).toBe(reason);
  // the message names the stable code users match on, not the deprecated kebab-case reason
  expect(err.message).toContain(`(${err.code})`);
  expect(err.name).toBe('CoapUriError');
  return err;
}

describe('parseUri: RFC 7252 §6.3 normalization examples', () => {
  const equivalent = [
    'coap://example.com:5683/~sensors/temp.xml',
    'coap://EXAMPLE.com/%7Esensors/temp.xml',
    'coap://EXAMPLE.com:/%7esensors/temp.xml',
  ];
  it.each(equivalent)('%s decomposes to the same options', (u) => {
    const p = parseUri(u);
    expect(p.scheme).toBe('coap');
    expect(p.host).toBe('example.com');
    expect(p.port).toBe(5683);
    expect(p.path).toEqual(['~sensors', 'temp.xml']);
    expect(p.query).toEqual([]);
    expect(p.href).toBe('coap://example.com/~sensors/temp.xml');
    expect(show(uriToOptions(p))).toEqual([
      [OptionNumber.UriHost, 'example.com'],
      [OptionNumber.UriPath, '~sensors'],
      [OptionNumber.UriPath, 'temp.xml'],
    ]);
  });
  it('all three give byte-identical option lists', () => {
    const lists = equivalent.map((u) => uriToOptions(u));
    expect(lists[1]).toEqual(lists[0]);
    expect(lists[2]).toEqual(lists[0]);
  });
  it('removes dot segments (RFC 3986 §5.2.4) but keeps empty segments', () => {
    expect(parseUri('coap://exaMPLE.com/%7esensors/../%7esensors//./temp.xml').path).toEqual(['~sensors', '', 'temp.xml']);
    expect(parseUri('coap://h/a/b/../../..').path).toEqual([]);
    expect(parseUri('coap://h/a/./b/.').path).toEqual(['a', 'b', '']);
    expect(parseUri('coap://h/a/b/..').path).toEqual(['a', '']);
    // A percent-encoded dot is not a dot segment.
    expect(parseUri('coap://h/a/%2E%2E').path).toEqual(['a', '..']);
  });
});

describe('parseUri: RFC 7252 Appendix B examples', () => {
  it('coap://[2001:db8::2:1]/ → no options', () => {
    const p = parseUri('coap://[2001:db8::2:1]/');
    expect(p).toMatchObject({ host: '2001:db8::2:1', hostType: 'ipv6', port: 5683, path: [], query: [] });
    expect(uriToOptions(p)).toEqual([]);
  });
  it('coap://example.net/ → Uri-Host only', () => {
    expect(show(uriToOptions('coap://example.net/'))).toEqual([[3, 'example.net']]);
  });
  it('coap://example.net/.well-known/core', () => {
    expect(show(uriToOptions('coap://example.net/.well-known/core'))).toEqual([
      [3, 'example.net'],
      [11, '.well-known'],
      [11, 'core'],
    ]);
  });
  it('coap://xn--18j4d.example/<UTF-8 path>', () => {
    const u = 'coap://xn--18j4d.example/%E3%81%93%E3%82%93%E3%81%AB%E3%81%A1%E3%81%AF';
    expect(show(uriToOptions(u))).toEqual([
      [3, 'xn--18j4d.example'],
      [11, 'こんにちは'],
    ]);
    expect(parseUri(u).href).toBe(u);
  });
  it('coap://198.51.100.1:61616//%2F//?%2F%2F&?%26', () => {
    const p = parseUri('coap://198.51.100.1:61616//%2F//?%2F%2F&?%26');
    expect(p).toMatchObject({ host: '198.51.100.1', hostType: 'ipv4', port: 61616 });
    expect(show(uriToOptions(p))).toEqual([
      [11, ''],
      [11, '/'],
      [11, ''],
      [11, ''],
      [15, '//'],
      [15, '?&'],
    ]);
    // §6.5 composition of the same options and destination.
    const back = optionsToUri(uriToOptions(p), { host: '198.51.100.1', port: 61616 });
    expect(back).toBe('coap://198.51.100.1:61616//%2F//?//&?%26');
    expect(parseUri(back).path).toEqual(p.path);
    expect(parseUri(back).query).toEqual(p.query);
  });
});

describe('parseUri: schemes, ports, transports', () => {
  const cases: [string, string, number, boolean][] = [
    ['coap', 'udp', 5683, false],
    ['coaps', 'dtls', 5684, true],
    ['coap+tcp', 'tcp', 5683, false],
    ['coaps+tcp', 'tls', 5684, true],
    ['coap+ws', 'ws', 80, false],
    ['coaps+ws', 'wss', 443, true],
  ];
  it.each(cases)('%s → %s, default port %d', (scheme, transport, port, secure) => {
    const p = parseUri(`${scheme.toUpperCase()}://h.example/x`);
    expect(p.scheme).toBe(scheme);
    expect(p.transport).toBe(transport);
    expect(p.port).toBe(port);
    expect(p.secure).toBe(secure);
    expect(defaultPort(p.scheme)).toBe(port);
    expect(schemeTransport(p.scheme)).toBe(transport);
    expect(p.href).toBe(`${scheme}://h.example/x`);
    const explicit = parseUri(`${scheme}://h.example:${port}/x`);
    expect(explicit.port).toBe(port);
    expect(explicit.href).toBe(p.href);
  });
  it('ws schemes carry the /.well-known/coap WebSocket path and URL', () => {
    expect(parseUri('coap+ws://example.org/a')).toMatchObject({
      wsPath: '/.well-known/coap',
      wsUrl: 'ws://example.org/.well-known/coap',
    });
    expect(parseUri('coaps+ws://[2001:db8::1]:8443/a').wsUrl).toBe('wss://[2001:db8::1]:8443/.well-known/coap');
    expect(parseUri('coaps+ws://h:443').wsUrl).toBe('wss://h/.well-known/coap');
    expect(parseUri('coap+tcp://h/').wsPath).toBeUndefined();
    expect(parseUri('coap://h/').wsUrl).toBeUndefined();
  });
  it('explicit ports, leading zeros, bounds', () => {
    expect(parseUri('coap://h:1/').port).toBe(1);
    expect(parseUri('coap://h:65535/').port).toBe(65535);
    expect(parseUri('coap://h:0005683/').port).toBe(5683);
    expect(parseUri('coap://h:61616').href).toBe('coap://h:61616/');
  });
  it('accepts a URL object', () => {
    const p = parseUri(new URL('coap://example.com:1234/a/b?c=d'));
    expect(p).toMatchObject({ host: 'example.com', port: 1234, path: ['a', 'b'], query: ['c=d'] });
  });
  it('empty path and "/" both give no path segments; "//" gives two empty ones', () => {
    expect(parseUri('coap://h').path).toEqual([]);
    expect(parseUri('coap://h/').path).toEqual([]);
    expect(parseUri('coap://h//').path).toEqual(['', '']);
    expect(parseUri('coap://h?x').path).toEqual([]);
    expect(parseUri('coap://h?x').query).toEqual(['x']);
  });
});

describe('parseUri: hosts', () => {
  it('IPv6 literals are returned bracketless in RFC 5952 form', () => {
    expect(parseUri('coap://[2001:DB8:0:0:1:0:0:1]/').host).toBe('2001:db8::1:0:0:1');
    expect(parseUri('coap://[2001:0db8:0000:0000:0000:0000:0000:0001]:99/').host).toBe('2001:db8::1');
    expect(parseUri('coap://[::1]/').host).toBe('::1');
    expect(parseUri('coap://[::]/').host).toBe('::');
    expect(parseUri('coap://[1::]/').host).toBe('1::');
    expect(parseUri('coap://[2001:db8:0:1:1:1:1:1]/').host).toBe('2001:db8:0:1:1:1:1:1');
    expect(parseUri('coap://[::FFFF:192.0.2.1]/').host).toBe('::ffff:192.0.2.1');
    expect(parseUri('coap://[1:2:3:4:5:6:1.2.3.4]/').host).toBe('1:2:3:4:5:6:102:304');
    expect(parseUri('coap://[::1]:7777/x').href).toBe('coap://[::1]:7777/x');
  });
  it('IPv6 zone ids (RFC 6874 "%25") are split off into `zone`', () => {
    const p = parseUri('coap://[fe80::1%25eth0]:5683/a');
    expect(p).toMatchObject({ host: 'fe80::1', zone: 'eth0', hostType: 'ipv6', port: 5683 });
    expect(p.href).toBe('coap://[fe80::1%25eth0]/a');
    expect(parseUri('coap://[fe80::1%25en%2D1]/').zone).toBe('en-1');
    // Zones are never sent: not even with includeHost.
    expect(show(uriToOptions(p, { includeHost: true }))).toEqual([
      [3, '[fe80::1]'],
      [11, 'a'],
    ]);
    expect(parseUri('coap://[fe80::1]/').zone).toBeUndefined();
  });
  it('rejects zone ids that are not "%25"-introduced or are empty / have bad characters', () => {
    expectUriError(() => parseUri('coap://[fe80::1%eth0]/'), 'invalid-host');
    expectUriError(() => parseUri('coap://[fe80::1%25]/'), 'invalid-host');
    expectUriError(() => parseUri('coap://[fe80::1%25eth!0]/'), 'invalid-character');
    expectUriError(() => parseUri('coap://[fe80::1%25eth/0]/'), 'invalid-host');
    expectUriError(() => parseUri('coap://[fe80::1%25eth%]/'), 'invalid-percent-encoding');
  });
  it('registered names are lower-cased and percent-decoded', () => {
    expect(parseUri('coap://Sub.EXAMPLE.Org/').host).toBe('sub.example.org');
    expect(parseUri('coap://ex%41mple.com/').host).toBe('example.com');
    expect(parseUri('coap://ex%41mple.com/').hostType).toBe('name');
  });
  it('IPv4 addresses are strict dotted-decimal', () => {
    expect(parseUri('coap://192.0.2.1/').hostType).toBe('ipv4');
    expect(isIPv4('255.255.255.255')).toBe(true);
    expect(isIPv4('256.1.1.1')).toBe(false);
    expect(isIPv4('01.1.1.1')).toBe(false);
    expectUriError(() => parseUri('coap://1.2.3.256/'), 'invalid-host');
    expectUriError(() => parseUri('coap://01.2.3.4/'), 'invalid-host');
    expectUriError(() => parseUri('coap://1.2.3/'), 'invalid-host');
    // Not numeric: a name.
    expect(parseUri('coap://1.2.3.example/').hostType).toBe('name');
  });
  it('bad IP literals', () => {
    for (const h of ['[::1', '[1:2:3:4:5:6:7:8:9]', '[:::]', '[1::2::3]', '[12345::]', '[g::]', '[]', '[1:2:3:4:5:6:7]', '[::1.2.3]']) {
      expectUriError(() => parseUri(`coap://${h}/`), 'invalid-host');
    }
    expectUriError(() => parseUri('coap://[::1]x/'), 'invalid-host');
    expectUriError(() => parseUri('coap://[v1.fe80::a]/'), 'unsupported-host');
    expect(isIPv6('1:2:3:4:5:6:7::')).toBe(true);
    expect(isIPv6('1:2:3:4:5:6:7:8::')).toBe(false);
    expect(canonicalIPv6('fe80:0:0:0:0:0:0:1%eth0')).toBe('fe80::1%eth0');
    expect(canonicalIPv6('nope')).toBeUndefined();
  });
});

describe('parseUri: query and percent-encoding', () => {
  it('splits the query on & and decodes each argument', () => {
    expect(parseUri('coap://h/p?a=1&b=%26&c=%3D&d=x+y').query).toEqual(['a=1', 'b=&', 'c==', 'd=x+y']);
    expect(parseUri('coap://h/p?a&&b').query).toEqual(['a', '', 'b']);
    expect(parseUri('coap://h/p?').query).toEqual(['']);
    expect(parseUri('coap://h/p?a?b/c').query).toEqual(['a?b/c']);
  });
  it('decodes %2F and %25 inside segments without splitting', () => {
    expect(parseUri('coap://h/a%2Fb/%25/%2f').path).toEqual(['a/b', '%', '/']);
  });
  it('accepts non-ASCII (IRI) path characters as UTF-8 and re-encodes them in href', () => {
    const p = parseUri('coap://h/café?ü=1');
    expect(p.path).toEqual(['café']);
    expect(p.query).toEqual(['ü=1']);
    expect(p.href).toBe('coap://h/caf%C3%A9?%C3%BC=1');
    expect(parseUri('coap://h/😀').path).toEqual(['😀']);
  });
  it('normalizes the case of percent-escapes and decodes unreserved ones in href', () => {
    expect(parseUri('coap://h/%7e%41%3f%3F').href).toBe('coap://h/~A%3F%3F');
  });
  it('rejects bad escapes and non-UTF-8 escapes', () => {
    expectUriError(() => parseUri('coap://h/%zz'), 'invalid-percent-encoding');
    expectUriError(() => parseUri('coap://h/%4'), 'invalid-percent-encoding');
    expectUriError(() => parseUri('coap://h/a%'), 'invalid-percent-encoding');
    expectUriError(() => parseUri('coap://h/?q=%G0'), 'invalid-percent-encoding');
    expectUriError(() => parseUri('coap://h/%C3%28'), 'invalid-utf8');
    expectUriError(() => parseUri('coap://h/?%FF'), 'invalid-utf8');
    expectUriError(() => parseUri('coap://h/%ED%A0%80'), 'invalid-utf8'); // encoded surrogate
  });
  it('rejects characters that URIs do not allow', () => {
    for (const u of ['coap://h/a b', 'coap://h/<', 'coap://h/a|b', 'coap://h/{x}', 'coap://h/a\\b', 'coap://h/a"', 'coap://h/?a b', 'coap://h/\u0001', 'coap://h/[x]', ' coap://h/']) {
      expectUriError(() => parseUri(u), u.startsWith(' ') ? 'not-absolute' : 'invalid-character');
    }
    expectUriError(() => parseUri('coap://h/\ud800'), 'invalid-character');
    expectUriError(() => parseUri('coap://h/?\udc00x'), 'invalid-character');
    expectUriError(() => parseUri('coap://hö.example/'), 'invalid-character');
    expectUriError(() => parseUri('coap://h_%/'), 'invalid-percent-encoding');
  });
  it('enforces the 255-byte option limit on segments, arguments and host', () => {
    const max = 'a'.repeat(255);
    expect(parseUri(`coap://h/${max}`).path[0]).toHaveLength(255);
    expectUriError(() => parseUri(`coap://h/${max}a`), 'too-long');
    expectUriError(() => parseUri(`coap://h/x?${max}a`), 'too-long');
    expect(parseUri(`coap://h/${'é'.repeat(127)}a`).path[0]).toHaveLength(128); // 255 bytes
    expectUriError(() => parseUri(`coap://h/${'é'.repeat(128)}`), 'too-long'); // 256 bytes
    expectUriError(() => parseUri(`coap://h/${'%C3%A9'.repeat(128)}`), 'too-long');
    expect(parseUri(`coap://${'h'.repeat(255)}/`).host).toHaveLength(255);
    expectUriError(() => parseUri(`coap://${'h'.repeat(256)}/`), 'too-long');
  });
});

describe('parseUri: invalid URIs', () => {
  const bad: [string, CoapUriErrorReason][] = [
    ['coap://h/a#frag', 'fragment'],
    ['coap://h/#', 'fragment'],
    ['http://h/a', 'unsupported-scheme'],
    ['coap+udp://h/', 'unsupported-scheme'],
    ['/a/b', 'not-absolute'],
    ['a/b', 'not-absolute'],
    ['//h/a', 'not-absolute'],
    ['', 'not-absolute'],
    ['1coap://h', 'not-absolute'],
    ['coap:/h/a', 'missing-authority'],
    ['coap:h', 'missing-authority'],
    ['coap:///a', 'missing-host'],
    ['coap://:5683/a', 'missing-host'],
    ['coap://user@h/', 'userinfo'],
    ['coap://u:p@h/', 'userinfo'],
    ['coap://h:0/', 'invalid-port'],
    ['coap://h:65536/', 'invalid-port'],
    ['coap://h:99999999999999999999/', 'invalid-port'],
    ['coap://h:12ab/', 'invalid-port'],
    ['coap://h:-1/', 'invalid-port'],
    ['coap://h: 1/', 'invalid-port'],
    ['coap://[::1]:x/', 'invalid-port'],
  ];
  it.each(bad)('%j → %s', (u, reason) => {
    const err = expectUriError(() => parseUri(u), reason);
    expect(err.input).toBe(u);
    expect(err.message).toContain(err.code);
  });
  it('non-string input is a typed error', () => {
    expectUriError(() => parseUri(42 as unknown as string), 'not-absolute');
  });
  it('truncates very long inputs in the error', () => {
    const err = expectUriError(() => parseUri(`http://${'x'.repeat(1000)}`), 'unsupported-scheme');
    expect(err.input.length).toBeLessThanOrEqual(201);
  });
});

describe('uriToOptions (RFC 7252 §6.4)', () => {
  it('omits Uri-Host for IP literals and Uri-Port always; includes them on request', () => {
    expect(uriToOptions('coap://192.0.2.1:9999/a?b')).toEqual([opt(11, 'a'), opt(15, 'b')]);
    expect(show(uriToOptions('coap://192.0.2.1:9999/a', { includeHost: true, includePort: true }))).toEqual([
      [3, '192.0.2.1'],
      [7, 9999],
      [11, 'a'],
    ]);
    expect(show(uriToOptions('coap://[2001:db8::1]/', { includeHost: true }))).toEqual([[3, '[2001:db8::1]']]);
    expect(uriToOptions('coap://h:5683/', { includePort: true })[1]).toEqual({ number: 7, value: encodeUint(5683) });
  });
  it('emits options in option-number order', () => {
    const nums = uriToOptions('coap://h.example:1/a/b?x&y', { includePort: true }).map((o) => o.number);
    expect(nums).toEqual([3, 7, 11, 11, 15, 15]);
  });
  it('encodes values as UTF-8', () => {
    const [o] = uriToOptions('coap://[::1]/%C3%A9');
    expect(Array.from(o?.value ?? [])).toEqual([0xc3, 0xa9]);
  });
  it('checks hand-built CoapUri values', () => {
    const p = { ...parseUri('coap://[::1]/'), path: ['x'.repeat(256)] };
    expectUriError(() => uriToOptions(p), 'too-long');
  });
});

describe('optionsToUri (RFC 7252 §6.5)', () => {
  it('uses Uri-Host / Uri-Port when present, else the destination', () => {
    const o = [opt(3, 'example.net'), opt(11, '.well-known'), opt(11, 'core')];
    expect(optionsToUri(o, { host: '192.0.2.1', port: 5683 })).toBe('coap://example.net/.well-known/core');
    expect(optionsToUri([opt(7, encodeUint(61616)), opt(11, 'x')], { host: '192.0.2.1', port: 5683 })).toBe(
      'coap://192.0.2.1:61616/x',
    );
    expect(optionsToUri([], { host: '2001:DB8:0:0:0:0:2:1', port: 5683 })).toBe('coap://[2001:db8::2:1]/');
    expect(optionsToUri([], { host: 'fe80::1%eth0', port: 1000 })).toBe('coap://[fe80::1%25eth0]:1000/');
    expect(optionsToUri([], { host: '192.0.2.1', port: 5684, scheme: 'coaps' })).toBe('coaps://192.0.2.1/');
    expect(optionsToUri([], { host: '192.0.2.1', port: 5683, scheme: 'coaps' })).toBe('coaps://192.0.2.1:5683/');
    expect(optionsToUri([opt(7, encodeUint(5683))], { host: '192.0.2.1', port: 9 })).toBe('coap://192.0.2.1/');
  });
  it('percent-encodes path segments and query arguments', () => {
    const o = [opt(11, 'a b'), opt(11, 'c/d'), opt(11, 'é'), opt(11, "!$&'()*+,;=:@"), opt(15, 'k=v&w'), opt(15, '/?#')];
    const u = optionsToUri(o, { host: '192.0.2.1', port: 5683 });
    expect(u).toBe("coap://192.0.2.1/a%20b/c%2Fd/%C3%A9/!$&'()*+,;=:@?k=v%26w&/?%23");
    const p = parseUri(u);
    expect(p.path).toEqual(['a b', 'c/d', 'é', "!$&'()*+,;=:@"]);
    expect(p.query).toEqual(['k=v&w', '/?#']);
  });
  it('ignores other options and accepts any iterable', () => {
    function* gen(): Generator<UriOption> {
      yield opt(12, new Uint8Array([0]));
      yield opt(11, 'x');
      yield opt(35, 'coap://other/');
    }
    expect(optionsToUri(gen(), { host: '10.0.0.1', port: 5683 })).toBe('coap://10.0.0.1/x');
  });
  it('percent-encodes a non-ASCII Uri-Host and validates it', () => {
    expect(optionsToUri([opt(3, 'bücher.example')], { host: '10.0.0.1', port: 5683 })).toBe('coap://b%C3%BCcher.example/');
    expect(optionsToUri([opt(3, '[2001:DB8::1]')], { host: '10.0.0.1', port: 5683 })).toBe('coap://[2001:db8::1]/');
    expectUriError(() => optionsToUri([opt(3, 'a b')], { host: '10.0.0.1', port: 5683 }), 'invalid-option');
    expectUriError(() => optionsToUri([opt(3, '')], { host: '10.0.0.1', port: 5683 }), 'invalid-option');
    expectUriError(() => optionsToUri([opt(3, '[zz]')], { host: '10.0.0.1', port: 5683 }), 'invalid-option');
    expectUriError(() => optionsToUri([opt(3, 'a'), opt(3, 'b')], { host: '10.0.0.1', port: 5683 }), 'invalid-option');
    expectUriError(() => optionsToUri([opt(7, encodeUint(1)), opt(7, encodeUint(2))], { host: '10.0.0.1', port: 5683 }), 'invalid-option');
    expectUriError(() => optionsToUri([opt(7, encodeUint(70000))], { host: '10.0.0.1', port: 5683 }), 'invalid-option');
    expectUriError(() => optionsToUri([opt(7, new Uint8Array(0))], { host: '10.0.0.1', port: 5683 }), 'invalid-option');
    expectUriError(() => optionsToUri([opt(11, new Uint8Array([0xff]))], { host: '10.0.0.1', port: 5683 }), 'invalid-utf8');
  });
});

describe('parse ⇄ options ⇄ compose round trips', () => {
  // Deterministic pseudo-random strings over a nasty alphabet.
  let seed = 0x12345678;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const alphabet = ['a', 'Z', '0', '/', '%', '?', '&', '=', '#', ' ', '+', '~', '.', ':', '@', '[', ']', 'é', '€', '😀', "'", '"', '\\', '\t'];
  const word = (): string => {
    let s = '';
    const len = rnd(8);
    for (let i = 0; i < len; i++) s += alphabet[rnd(alphabet.length)];
    return s;
  };
  it('500 random path/query sets survive options → URI → parse', () => {
    for (let i = 0; i < 500; i++) {
      const path = Array.from({ length: 1 + rnd(4) }, word).filter((s, _k, a) => !(a.length === 1 && s === ''));
      // '.' and '..' segments are dot segments once composed; skip them.
      const safePath = path.map((s) => (s === '.' || s === '..' ? `${s}x` : s));
      const query = Array.from({ length: rnd(3) }, word);
      const opts = [...safePath.map((s) => opt(11, s)), ...query.map((s) => opt(15, s))];
      const uri = optionsToUri(opts, { host: '192.0.2.7', port: 1234, scheme: 'coap+tcp' });
      const p = parseUri(uri);
      expect(p.path).toEqual(safePath);
      expect(p.query).toEqual(query);
      expect(p.port).toBe(1234);
      expect(uriToOptions(p)).toEqual(opts);
      expect(formatUri(p)).toBe(uri);
      expect(parseUri(p.href)).toEqual(p);
    }
  });
});

describe('encodePathSegment / encodeQueryArgument / formatUri', () => {
  it('keep unreserved, sub-delims, ":" and "@"', () => {
    expect(encodePathSegment("azAZ09-._~!$&'()*+,;=:@")).toBe("azAZ09-._~!$&'()*+,;=:@");
    expect(encodePathSegment('/?#% ')).toBe('%2F%3F%23%25%20');
    expect(encodeQueryArgument('a=b&c/d?e#')).toBe('a=b%26c/d?e%23');
  });
  it('formatUri brackets IPv6 and omits default ports', () => {
    expect(formatUri({ scheme: 'coaps+tcp', host: '2001:db8::1', port: 5684, path: ['a b'], query: ['x'] })).toBe(
      'coaps+tcp://[2001:db8::1]/a%20b?x',
    );
    expect(formatUri({ scheme: 'coap', host: 'h', path: [''] })).toBe('coap://h/');
    expectUriError(() => formatUri({ scheme: 'coap', host: 'h', port: 0 }), 'invalid-port');
    expectUriError(() => formatUri({ scheme: 'xx' as 'coap', host: 'h' }), 'unsupported-scheme');
  });
});

describe('pathFromOptions / queryFromOptions', () => {
  it('joins Uri-Path values with "/" and escapes only "%" and "/"', () => {
    expect(pathFromOptions([])).toBe('/');
    expect(pathFromOptions([opt(11, '')])).toBe('/');
    expect(pathFromOptions([opt(11, 'a'), opt(11, '')])).toBe('/a/');
    expect(pathFromOptions([opt(11, 'a/b'), opt(11, '100%'), opt(11, 'c d?')])).toBe('/a%2Fb/100%25/c d?');
    expect(pathFromOptions([opt(3, 'h'), opt(11, 'é/€'), opt(15, 'q')])).toBe('/é%2F€');
  });
  it('handles long ASCII and non-ASCII values', () => {
    const long = 'x'.repeat(200);
    expect(pathFromOptions([opt(11, long), opt(11, `${long}/`)])).toBe(`/${long}/${long}%2F`);
  });
  it('rejects invalid UTF-8', () => {
    expectUriError(() => pathFromOptions([opt(11, new Uint8Array([0x61, 0xc3]))]), 'invalid-utf8');
    expectUriError(() => queryFromOptions([opt(15, new Uint8Array([0xe0, 0x80, 0x80]))]), 'invalid-utf8');
  });
  it('work on one-shot iterables', () => {
    function* gen(): Generator<UriOption> {
      yield opt(11, 'a');
      yield opt(15, 'q');
      yield opt(11, 'b');
    }
    expect(pathFromOptions(gen())).toBe('/a/b');
    expect(queryFromOptions(gen())).toEqual(['q']);
  });
  it('queryFromOptions returns the values unescaped, in order', () => {
    expect(queryFromOptions([opt(15, 'a=1'), opt(11, 'p'), opt(15, 'b=%/&')])).toEqual(['a=1', 'b=%/&']);
    expect(queryFromOptions([])).toEqual([]);
  });
});

describe('Location-Path / Location-Query', () => {
  it('locationFromOptions reads path, query and a relative reference', () => {
    const loc = locationFromOptions([opt(8, 'things'), opt(8, 'a b/c'), opt(20, 'rev=3'), opt(20, 'x&y')]);
    expect(loc.path).toBe('/things/a b%2Fc');
    expect(loc.query).toEqual(['rev=3', 'x&y']);
    expect(loc.href).toBe('/things/a%20b%2Fc?rev=3&x%26y');
    expect(locationFromOptions([opt(20, 'q')])).toEqual({ path: undefined, query: ['q'], href: '?q' });
    expect(locationFromOptions([opt(11, 'not-location')])).toEqual({ path: undefined, query: [], href: '' });
    function* gen(): Generator<UriOption> {
      yield opt(8, 'x');
      yield opt(20, 'y');
    }
    expect(locationFromOptions(gen())).toEqual({ path: '/x', query: ['y'], href: '/x?y' });
    expectUriError(() => locationFromOptions([opt(8, new Uint8Array([0xc0]))]), 'invalid-utf8');
  });
  it('locationToOptions builds options and round-trips', () => {
    const o = locationToOptions('/things/42%2F1?rev=3&a%26b');
    expect(show(o)).toEqual([
      [8, 'things'],
      [8, '42/1'],
      [20, 'rev=3'],
      [20, 'a&b'],
    ]);
    expect(locationFromOptions(o).href).toBe('/things/42%2F1?rev=3&a%26b');
    expect(locationToOptions('/')).toEqual([]);
    expect(show(locationToOptions('/?x'))).toEqual([[20, 'x']]);
  });
  it('locationToOptions rejects relative paths, fragments and dot segments', () => {
    expectUriError(() => locationToOptions('things/1'), 'not-absolute');
    expectUriError(() => locationToOptions('/a#b'), 'fragment');
    expectUriError(() => locationToOptions('/a/../b'), 'invalid-character');
    expectUriError(() => locationToOptions('/./b'), 'invalid-character');
    expectUriError(() => locationToOptions('/a b'), 'invalid-character');
    expectUriError(() => locationToOptions(`/${'a'.repeat(256)}`), 'too-long');
  });
});
