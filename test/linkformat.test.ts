import { describe, expect, it } from 'vitest';
import { CoapError } from '../ts/errors';
import {
  CoapLinkFormatError,
  DEFAULT_MAX_ATTRIBUTES,
  DEFAULT_MAX_LINKS,
  type Link,
  filterLinks,
  formatLinks,
  parseLinks,
} from '../ts/linkformat';

function expectLfError(fn: () => unknown, position?: number): CoapLinkFormatError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(CoapLinkFormatError);
  expect(caught).toBeInstanceOf(CoapError);
  const err = caught as CoapLinkFormatError;
  expect(err.name).toBe('CoapLinkFormatError');
  if (position !== undefined) expect(err.position).toBe(position);
  return err;
}

// RFC 6690 §5 examples (line feeds are for readability only, the RFC says;
// the parser accepts them anyway).
const RFC_EX1 = '</sensors/temp>;if="sensor",\n</sensors/light>;if="sensor"';
const RFC_EX2_CORE = '</sensors>;ct=40';
const RFC_EX2_SENSORS = '</sensors/temp>;rt="temperature-c";if="sensor",\n</sensors/light>;rt="light-lux";if="sensor"';
const RFC_EX3 = [
  '</sensors>;ct=40;title="Sensor Index",',
  '</sensors/temp>;rt="temperature-c";if="sensor",',
  '</sensors/light>;rt="light-lux";if="sensor",',
  '<http://www.example.com/sensors/t123>;anchor="/sensors/temp"',
  ';rel="describedby",',
  '</t>;anchor="/sensors/temp";rel="alternate"',
].join('\n');

const EX3_LINKS: Link[] = [
  { href: '/sensors', attributes: { ct: 40, title: 'Sensor Index' } },
  { href: '/sensors/temp', attributes: { rt: 'temperature-c', if: 'sensor' } },
  { href: '/sensors/light', attributes: { rt: 'light-lux', if: 'sensor' } },
  { href: 'http://www.example.com/sensors/t123', attributes: { anchor: '/sensors/temp', rel: 'describedby' } },
  { href: '/t', attributes: { anchor: '/sensors/temp', rel: 'alternate' } },
];

describe('RFC 6690 §5 examples', () => {
  it('two sensors sharing an interface description', () => {
    const links = parseLinks(RFC_EX1);
    expect(links).toEqual([
      { href: '/sensors/temp', attributes: { if: 'sensor' } },
      { href: '/sensors/light', attributes: { if: 'sensor' } },
    ]);
    // "Without the linefeeds included"
    expect(formatLinks(links)).toBe('</sensors/temp>;if="sensor",</sensors/light>;if="sensor"');
  });
  it('hierarchical discovery: /.well-known/core → /sensors', () => {
    expect(parseLinks(RFC_EX2_CORE)).toEqual([{ href: '/sensors', attributes: { ct: 40 } }]);
    expect(formatLinks(parseLinks(RFC_EX2_CORE))).toBe(RFC_EX2_CORE);
    const sensors = parseLinks(RFC_EX2_SENSORS);
    expect(formatLinks(sensors)).toBe(RFC_EX2_SENSORS.replace('\n', ''));
  });
  it('query filter ?rt=light-lux', () => {
    const out = filterLinks(parseLinks(RFC_EX2_SENSORS), ['rt=light-lux']);
    expect(formatLinks(out)).toBe('</sensors/light>;rt="light-lux";if="sensor"');
  });
  it('anchors, rel and a link split over lines', () => {
    const links = parseLinks(RFC_EX3);
    expect(links).toEqual(EX3_LINKS);
    expect(parseLinks(formatLinks(links))).toEqual(EX3_LINKS);
    expect(formatLinks(links)).toBe(RFC_EX3.replace(/\n/g, ''));
  });
});

describe('filterLinks (RFC 6690 §4.1)', () => {
  const links = EX3_LINKS;
  const hrefs = (q: string[]): string[] => filterLinks(links, q).map((l) => l.href);
  it('href exact and prefix', () => {
    expect(hrefs(['href=/t'])).toEqual(['/t']);
    expect(hrefs(['href=/sensors*'])).toEqual(['/sensors', '/sensors/temp', '/sensors/light']);
    expect(hrefs(['href=/sensors'])).toEqual(['/sensors']);
    expect(hrefs(['href=*'])).toHaveLength(5);
  });
  it('attribute exact, prefix and presence', () => {
    expect(hrefs(['if=sensor'])).toEqual(['/sensors/temp', '/sensors/light']);
    expect(hrefs(['rt=temp*'])).toEqual(['/sensors/temp']);
    expect(hrefs(['rt=temperature'])).toEqual([]);
    expect(hrefs(['ct=40'])).toEqual(['/sensors']);
    expect(hrefs(['ct=4*'])).toEqual(['/sensors']);
    expect(hrefs(['rel=describedby'])).toEqual(['http://www.example.com/sensors/t123']);
    expect(hrefs(['anchor=/sensors/temp'])).toEqual(['http://www.example.com/sensors/t123', '/t']);
    expect(hrefs(['title=*'])).toEqual(['/sensors']);
    expect(hrefs(['title'])).toEqual(['/sensors']);
    expect(hrefs(['title=Sensor Index'])).toEqual(['/sensors']);
    expect(hrefs(['nope=*'])).toEqual([]);
  });
  it('space-separated values match any element', () => {
    const l: Link[] = [
      { href: '/a', attributes: { rt: 'core.s temperature-c', ct: [0, 40] } },
      { href: '/b', attributes: { rt: ['x.y', 'core.a'], if: 'core.b' } },
    ];
    const h = (q: string[]): string[] => filterLinks(l, q).map((x) => x.href);
    expect(h(['rt=temperature-c'])).toEqual(['/a']);
    expect(h(['rt=core.s'])).toEqual(['/a']);
    expect(h(['rt=core.*'])).toEqual(['/a', '/b']);
    expect(h(['rt=core.a'])).toEqual(['/b']);
    expect(h(['ct=0'])).toEqual(['/a']);
    expect(h(['ct=40'])).toEqual(['/a']);
    expect(h(['ct=4'])).toEqual([]);
    expect(h(['rt=s temp*'])).toEqual([]); // elements are whole words
  });
  it('flags match a bare name, an empty value or "*"', () => {
    const l: Link[] = [
      { href: '/obs', attributes: { obs: true } },
      { href: '/not', attributes: { obs: false } },
      { href: '/none' },
    ];
    for (const q of ['obs', 'obs=', 'obs=*']) expect(filterLinks(l, [q]).map((x) => x.href)).toEqual(['/obs']);
    expect(filterLinks(l, ['obs=1'])).toEqual([]);
  });
  it('attribute names are compared case-insensitively; several arguments are ANDed', () => {
    expect(hrefs(['RT=light-lux'])).toEqual(['/sensors/light']);
    expect(hrefs(['if=sensor', 'rt=light*'])).toEqual(['/sensors/light']);
    expect(hrefs(['if=sensor', 'href=/t'])).toEqual([]);
  });
  it('no (or nameless) arguments return every link, as a copy', () => {
    const out = filterLinks(links, []);
    expect(out).toEqual(links);
    expect(out).not.toBe(links);
    expect(filterLinks(links, ['=x', ''])).toHaveLength(5);
  });
  it('a "*" inside the value is literal', () => {
    const l: Link[] = [{ href: '/a', attributes: { rt: 'a*b' } }];
    expect(filterLinks(l, ['rt=a*b'])).toHaveLength(1);
    expect(filterLinks(l, ['rt=a*'])).toHaveLength(1);
    expect(filterLinks(l, ['rt=a*c'])).toHaveLength(0);
  });
});

describe('formatLinks', () => {
  it('quotes strings, leaves numbers and flags bare', () => {
    const s = formatLinks([
      {
        href: '/s',
        attributes: { rt: 'temperature-c', if: 'sensor', ct: 50, sz: 1280, obs: true, gone: false, title: 'Temp', lt: 3600 },
      },
    ]);
    expect(s).toBe('</s>;rt="temperature-c";if="sensor";ct=50;sz=1280;obs;title="Temp";lt=3600');
  });
  it('writes lists space-separated in one quoted value', () => {
    expect(formatLinks([{ href: '/a', attributes: { rt: ['a', 'b'], ct: [0, 40], if: ['x'] } }])).toBe(
      '</a>;rt="a b";ct="0 40";if="x"',
    );
    expect(formatLinks([{ href: '/a', attributes: { ct: [40] } }])).toBe('</a>;ct=40');
    expect(formatLinks([{ href: '/a', attributes: { ct: [] } }])).toBe('</a>');
    expect(formatLinks([{ href: '/a', attributes: { ct: '40', sz: '12' } }])).toBe('</a>;ct=40;sz=12');
  });
  it('escapes quotes and backslashes, and parses them back', () => {
    const links: Link[] = [{ href: '/q', attributes: { title: 'say "hi", \\ ; ok' } }];
    const s = formatLinks(links);
    expect(s).toBe('</q>;title="say \\"hi\\", \\\\ ; ok"');
    expect(parseLinks(s)).toEqual(links);
  });
  it('writes hreflang and ext-value (name*) bare', () => {
    expect(formatLinks([{ href: '/a', attributes: { hreflang: 'de', 'title*': "UTF-8'de'n%c3%a4chstes" } }])).toBe(
      "</a>;hreflang=de;title*=UTF-8'de'n%c3%a4chstes",
    );
  });
  it('handles no links and links without attributes', () => {
    expect(formatLinks([])).toBe('');
    expect(formatLinks([{ href: '/a' }, { href: '' }])).toBe('</a>,<>');
    expect(formatLinks([{ href: '/a', attributes: {} }])).toBe('</a>');
  });
  it('rejects what it cannot write', () => {
    expectLfError(() => formatLinks([{ href: '/a>b' }]), -1);
    expectLfError(() => formatLinks([{ href: '/a b' }]));
    expectLfError(() => formatLinks([{ href: '/a\n' }]));
    expectLfError(() => formatLinks([{ href: 5 as unknown as string }]));
    expectLfError(() => formatLinks([{ href: '/a', attributes: { 'r t': 'x' } }]));
    expectLfError(() => formatLinks([{ href: '/a', attributes: { 'a=b': 'x' } }]));
    expectLfError(() => formatLinks([{ href: '/a', attributes: { '': 'x' } }]));
    expectLfError(() => formatLinks([{ href: '/a', attributes: { sz: NaN } }]));
    expectLfError(() => formatLinks([{ href: '/a', attributes: { sz: Infinity } }]));
    expectLfError(() => formatLinks([{ href: '/a', attributes: { title: 'a\nb' } }]));
    expectLfError(() => formatLinks([{ href: '/a', attributes: { rt: ['a b'] } }]));
    expectLfError(() => formatLinks([{ href: '/a', attributes: { rt: [''] } }]));
    expectLfError(() => formatLinks([{ href: '/a', attributes: { rt: [true as unknown as string] } }]));
    expectLfError(() => formatLinks([{ href: '/a', attributes: { hreflang: 'a b' } }]));
    expectLfError(() => formatLinks([{ href: '/a', attributes: { x: {} as unknown as string } }]));
  });
});

describe('parseLinks', () => {
  it('tolerates whitespace around separators and a trailing comma', () => {
    const text = ' \r\n</a> ; rt = "x" ;\tobs , \n </b>;ct = 0 ,';
    expect(parseLinks(text)).toEqual([
      { href: '/a', attributes: { rt: 'x', obs: true } },
      { href: '/b', attributes: { ct: 0 } },
    ]);
  });
  it('keeps commas and semicolons inside quoted values', () => {
    expect(parseLinks('</a>;title="a,b;c",</b>;title="<x>"')).toEqual([
      { href: '/a', attributes: { title: 'a,b;c' } },
      { href: '/b', attributes: { title: '<x>' } },
    ]);
  });
  it('converts values: flags, ct lists, canonical unquoted integers', () => {
    const [l] = parseLinks('</a>;obs;ct="0 40";sz=1280;lt=007;x=-1;q="12";ep=node1;n=0');
    expect(l?.attributes).toEqual({ obs: true, ct: [0, 40], sz: 1280, lt: '007', x: '-1', q: '12', ep: 'node1', n: 0 });
    expect(parseLinks('</a>;ct="40"')[0]?.attributes).toEqual({ ct: 40 });
    expect(parseLinks('</a>;ct=text')[0]?.attributes).toEqual({ ct: 'text' });
    expect(parseLinks('</a>;ct=""')[0]?.attributes).toEqual({ ct: '' });
  });
  it('keeps the first of repeated attributes', () => {
    expect(parseLinks('</a>;rel="one";rel="two";rt=x;rt=y')[0]?.attributes).toEqual({ rel: 'one', rt: 'x' });
  });
  it('does not let attribute names touch Object.prototype', () => {
    const [l] = parseLinks('</a>;__proto__="x";constructor=y;toString');
    const attrs = l?.attributes ?? {};
    expect(Object.keys(attrs)).toEqual(['__proto__', 'constructor', 'toString']);
    expect(Object.getPrototypeOf(attrs)).toBe(Object.prototype);
    expect(attrs.__proto__).toBe('x');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(filterLinks([l as Link], ['constructor=y'])).toHaveLength(1);
    expect(filterLinks([{ href: '/b' }], ['constructor=*'])).toHaveLength(0);
    expect(filterLinks([{ href: '/b', attributes: {} }], ['toString'])).toHaveLength(0);
  });
  it('empty and blank inputs give no links', () => {
    expect(parseLinks('')).toEqual([]);
    expect(parseLinks(' \n\t ')).toEqual([]);
    expect(parseLinks('<>')).toEqual([{ href: '' }]);
  });
  it('reports malformed input with its offset', () => {
    expectLfError(() => parseLinks('/a'), 0);
    expectLfError(() => parseLinks('</a'), 0);
    expectLfError(() => parseLinks('</a>;title="x'), 11);
    expectLfError(() => parseLinks('</a>;title="x\\'), 11);
    expectLfError(() => parseLinks('</a>;=x'), 5);
    expectLfError(() => parseLinks('</a>;a*b=1'), 5);
    expectLfError(() => parseLinks('</a>;rt='), 8);
    expectLfError(() => parseLinks('</a>;rt=;x'), 8);
    expectLfError(() => parseLinks('</a>x'), 4);
    expectLfError(() => parseLinks('</a>;rt=x y'), 10);
    expectLfError(() => parseLinks('</a>,,</b>'), 5);
    expectLfError(() => parseLinks('</a b>'), 3);
    expectLfError(() => parseLinks('<</a>'), 1);
    expectLfError(() => parseLinks('</a>;title="a\u0001"'), 13);
    expectLfError(() => parseLinks('</a>;rt="x"junk'), 11);
    expectLfError(() => parseLinks(null as unknown as string));
  });
  it('terminates quickly on pathological input', () => {
    const inputs = ['"'.repeat(200_000), '<'.repeat(200_000), `</a>;t="${'\\"'.repeat(100_000)}`, `</a>${';x'.repeat(100_000)}`, ','.repeat(100_000)];
    for (const s of inputs) {
      try {
        parseLinks(s, { maxAttributes: 1_000_000 });
      } catch (e) {
        expect(e).toBeInstanceOf(CoapLinkFormatError);
      }
    }
    // Repeated attributes are not counted against the limit (only the first is kept).
    expect(parseLinks(`</a>${';x'.repeat(100_000)}`)[0]?.attributes).toEqual({ x: true });
  });
});

describe('parseLinks limits', () => {
  it('maxLinks: exactly the limit passes, one more fails', () => {
    const text = (n: number): string => Array.from({ length: n }, (_, i) => `</${i}>`).join(',');
    expect(parseLinks(text(3), { maxLinks: 3 })).toHaveLength(3);
    expectLfError(() => parseLinks(text(4), { maxLinks: 3 }));
    expect(parseLinks(text(DEFAULT_MAX_LINKS))).toHaveLength(DEFAULT_MAX_LINKS);
    const err = expectLfError(() => parseLinks(text(DEFAULT_MAX_LINKS + 1)));
    expect(err.message).toContain(`more than ${DEFAULT_MAX_LINKS} links`);
  });
  it('maxAttributes: exactly the limit passes, one more fails', () => {
    const text = (n: number): string => `</a>${Array.from({ length: n }, (_, i) => `;a${i}=${i}`).join('')}`;
    expect(Object.keys(parseLinks(text(2), { maxAttributes: 2 })[0]?.attributes ?? {})).toHaveLength(2);
    expectLfError(() => parseLinks(text(3), { maxAttributes: 2 }));
    expect(Object.keys(parseLinks(text(DEFAULT_MAX_ATTRIBUTES))[0]?.attributes ?? {})).toHaveLength(DEFAULT_MAX_ATTRIBUTES);
    expectLfError(() => parseLinks(text(DEFAULT_MAX_ATTRIBUTES + 1)));
  });
});

describe('format ⇄ parse round trip', () => {
  let seed = 42;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const chars = ['a', 'Z', '9', ' ', ',', ';', '"', '\\', '=', '<', '>', '*', 'é', '\t', '/', '%'];
  const str = (): string => Array.from({ length: rnd(10) }, () => chars[rnd(chars.length)]).join('');
  const names = ['rt', 'if', 'title', 'anchor', 'rel', 'sz', 'ct', 'obs', 'ep', 'x-y', 'lt'];
  it('400 random link sets survive formatLinks → parseLinks', () => {
    for (let i = 0; i < 400; i++) {
      const links: Link[] = [];
      for (let k = rnd(5); k > 0; k--) {
        const attributes: Record<string, string | number | boolean | number[]> = {};
        for (let j = rnd(5); j > 0; j--) {
          const name = names[rnd(names.length)] as string;
          const kind = rnd(4);
          if (name === 'ct') attributes[name] = kind === 0 ? [rnd(100), 1000 + rnd(100)] : rnd(65536);
          else if (name === 'obs') attributes[name] = true;
          else if (name === 'sz') attributes[name] = rnd(100_000);
          else attributes[name] = kind === 0 ? rnd(1_000_000) : str();
        }
        const href = `/${Array.from({ length: rnd(4) }, () => 'abc'[rnd(3)]).join('')}`;
        links.push(Object.keys(attributes).length === 0 ? { href } : { href, attributes });
      }
      const text = formatLinks(links);
      const back = parseLinks(text);
      // ct / sz strings holding integers are written bare and come back as numbers: none are generated.
      expect(back).toEqual(links);
      expect(formatLinks(back)).toBe(text);
    }
  });
});
