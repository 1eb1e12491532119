import { describe, expect, it } from 'vitest';
import { parseCode } from '../ts/codes';
import { CoapError } from '../ts/errors';
import { parseLinks } from '../ts/linkformat';
import {
  METHODS,
  METHOD_CODES,
  RESPONSE_CODE_NAMES,
  SIGNAL_CODE_NAMES,
  codeName,
  codeToMethod,
  isEmptyCode,
  isMethod,
  isRequestCode,
  isResponseCode,
  isSignalCode,
  isSuccessCode,
  methodIndex,
  methodToCode,
  type Method,
} from '../ts/methods';
import { CoapRouteError, Router, type RouteResult } from '../ts/router';
import { pathFromOptions } from '../ts/uri';

interface Req {
  method: string;
  path: string;
}
type Handler = (req: Req, params: Readonly<Record<string, string>>) => string;
const h =
  (name: string): Handler =>
  () =>
    name;
const req = (method: string, path: string): Req => ({ method, path });

/** Runs the matched handler, or returns the status (with allow list). */
function run(r: Router<Req, string>, method: string, path: string): string {
  const res = r.route(req(method, path));
  if (res.status === undefined) return `${res.handler(req(method, path), res.params)} ${JSON.stringify(res.params)}`;
  return res.status === '4.05' ? `4.05 ${res.allow.join(',')}` : res.status;
}

function expectRouteError(fn: () => unknown): CoapRouteError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(CoapRouteError);
  expect(caught).toBeInstanceOf(CoapError);
  return caught as CoapRouteError;
}

describe('methods', () => {
  it('maps methods to codes 0.01..0.07 and back', () => {
    expect(METHODS).toEqual(['GET', 'POST', 'PUT', 'DELETE', 'FETCH', 'PATCH', 'iPATCH']);
    METHODS.forEach((m, i) => {
      expect(METHOD_CODES[m]).toBe(i + 1);
      expect(methodToCode(m)).toBe(i + 1);
      expect(methodIndex(m)).toBe(i);
      expect(codeToMethod(i + 1)).toBe(m);
      expect(codeToMethod(`0.0${i + 1}`)).toBe(m);
      expect(isMethod(m)).toBe(true);
    });
    expect(codeToMethod(0)).toBeUndefined();
    expect(codeToMethod(8)).toBeUndefined();
    expect(codeToMethod('2.05')).toBeUndefined();
    expect(methodIndex('get')).toBe(-1);
    expect(methodIndex('IPATCH')).toBe(-1);
    expect(isMethod('HEAD')).toBe(false);
    expect(isMethod(1)).toBe(false);
    expect(() => methodToCode('HEAD' as Method)).toThrow(RangeError);
  });
  it('names every response code of RFC 7252 §12.1.2, RFC 7959, RFC 8132, RFC 8516', () => {
    const expected: Record<string, string> = {
      '2.01': 'Created',
      '2.02': 'Deleted',
      '2.03': 'Valid',
      '2.04': 'Changed',
      '2.05': 'Content',
      '4.00': 'Bad Request',
      '4.01': 'Unauthorized',
      '4.02': 'Bad Option',
      '4.03': 'Forbidden',
      '4.04': 'Not Found',
      '4.05': 'Method Not Allowed',
      '4.06': 'Not Acceptable',
      '4.12': 'Precondition Failed',
      '4.13': 'Request Entity Too Large',
      '4.15': 'Unsupported Content-Format',
      '5.00': 'Internal Server Error',
      '5.01': 'Not Implemented',
      '5.02': 'Bad Gateway',
      '5.03': 'Service Unavailable',
      '5.04': 'Gateway Timeout',
      '5.05': 'Proxying Not Supported',
      '2.31': 'Continue',
      '4.08': 'Request Entity Incomplete',
      '4.09': 'Conflict',
      '4.22': 'Unprocessable Entity',
      '4.29': 'Too Many Requests',
    };
    for (const [code, name] of Object.entries(expected)) {
      expect(RESPONSE_CODE_NAMES[code as keyof typeof RESPONSE_CODE_NAMES]).toBe(name);
      expect(codeName(code)).toBe(name);
      expect(codeName(parseCode(code))).toBe(name);
      expect(isResponseCode(code)).toBe(true);
    }
    expect(codeName('5.08')).toBe('Hop Limit Reached');
    expect(Object.keys(RESPONSE_CODE_NAMES)).toHaveLength(Object.keys(expected).length + 1);
  });
  it('names empty, request and signal codes', () => {
    expect(codeName(0)).toBe('Empty');
    expect(codeName('0.03')).toBe('PUT');
    expect(codeName('7.02')).toBe('Ping');
    expect(Object.keys(SIGNAL_CODE_NAMES)).toEqual(['7.01', '7.02', '7.03', '7.04', '7.05']);
    expect(codeName('2.06')).toBeUndefined();
    expect(codeName('0.08')).toBeUndefined();
    expect(codeName(256)).toBeUndefined();
    expect(codeName('x')).toBeUndefined();
  });
  it('classifies codes (numbers and strings) at the class boundaries', () => {
    expect(isRequestCode(0)).toBe(false);
    expect(isRequestCode(1)).toBe(true);
    expect(isRequestCode('0.31')).toBe(true);
    expect(isRequestCode(32)).toBe(false);
    expect(isEmptyCode('0.00')).toBe(true);
    expect(isEmptyCode(1)).toBe(false);
    for (const c of ['1.00', '3.00', '6.31', '0.01', '7.01']) expect(isResponseCode(c)).toBe(false);
    for (const c of ['2.00', '2.31', '4.31', '5.00', '5.31']) expect(isResponseCode(c)).toBe(true);
    expect(isSuccessCode('2.05')).toBe(true);
    expect(isSuccessCode('4.04')).toBe(false);
    expect(isSignalCode('7.00')).toBe(true);
    expect(isSignalCode(0xe5)).toBe(true);
    expect(isSignalCode(255)).toBe(true);
    expect(isSignalCode('6.31')).toBe(false);
    for (const bad of [-1, 256, 1.5, NaN, '2.5', '8.00', 'x', '']) {
      expect(isRequestCode(bad)).toBe(false);
      expect(isResponseCode(bad)).toBe(false);
      expect(isSignalCode(bad)).toBe(false);
      expect(isEmptyCode(bad)).toBe(false);
    }
  });
});

describe('Router matching', () => {
  it('routes literal paths and shares frozen results for parameterless routes', () => {
    const r = new Router<Req, string>().get('/a/b', h('ab')).get('/', h('root')).post('/a', h('a'));
    expect(run(r, 'GET', '/a/b')).toBe('ab {}');
    expect(run(r, 'GET', '/')).toBe('root {}');
    expect(run(r, 'GET', '')).toBe('root {}');
    expect(run(r, 'POST', '/a')).toBe('a {}');
    const m1 = r.route(req('GET', '/a/b'));
    const m2 = r.route(req('GET', '/a/b'));
    expect(m1).toBe(m2);
    expect(Object.isFrozen(m1)).toBe(true);
    expect(m1.status === undefined && Object.isFrozen(m1.params)).toBe(true);
    expect(m1.status === undefined && m1.pattern).toBe('/a/b');
  });
  it('decodes parameters', () => {
    const r = new Router<Req, string>().get('/devices/:id', h('dev')).get('/devices/:id/:prop', h('prop'));
    expect(run(r, 'GET', '/devices/42')).toBe('dev {"id":"42"}');
    expect(run(r, 'GET', '/devices/caf%C3%A9/temp')).toBe('prop {"id":"café","prop":"temp"}');
    expect(run(r, 'GET', pathFromOptions([{ number: 11, value: new TextEncoder().encode('devices') }, { number: 11, value: new TextEncoder().encode('a/b%') }]))).toBe(
      'dev {"id":"a/b%"}',
    );
    // Malformed escapes (not produced by pathFromOptions) are handed over raw.
    expect(run(r, 'GET', '/devices/%E0%A4%A')).toBe('dev {"id":"%E0%A4%A"}');
    // A parameter never matches an empty segment.
    expect(run(r, 'GET', '/devices/')).toBe('4.04');
    expect(run(r, 'GET', '/devices//x')).toBe('4.04');
    const a = r.route(req('GET', '/devices/1'));
    const b = r.route(req('GET', '/devices/1'));
    expect(a).not.toBe(b); // a fresh params object each time
  });
  it('literal segments win over parameters, with backtracking', () => {
    const r = new Router<Req, string>()
      .get('/d/:id', h('param'))
      .get('/d/new', h('literal'))
      .get('/a/:x/c', h('axc'))
      .get('/a/b/d', h('abd'));
    expect(run(r, 'GET', '/d/new')).toBe('literal {}');
    expect(run(r, 'GET', '/d/old')).toBe('param {"id":"old"}');
    expect(run(r, 'GET', '/a/b/d')).toBe('abd {}');
    expect(run(r, 'GET', '/a/b/c')).toBe('axc {"x":"b"}');
    expect(run(r, 'GET', '/a/b/e')).toBe('4.04');
  });
  it('falls through to a less specific route that serves the method', () => {
    const r = new Router<Req, string>().get('/d/new', h('literal')).put('/d/:id', h('put'));
    expect(run(r, 'PUT', '/d/new')).toBe('put {"id":"new"}');
    expect(run(r, 'GET', '/d/new')).toBe('literal {}');
    expect(run(r, 'GET', '/d/x')).toBe('4.05 PUT');
    expect(run(r, 'DELETE', '/d/new')).toBe('4.05 GET,PUT');
  });
  it('one path, several methods; per-method parameter names', () => {
    const r = new Router<Req, string>()
      .get('/r/:id', h('get'))
      .put('/r/:name', h('put'))
      .delete('/r/:id', h('delete'))
      .fetch('/r/:id', h('fetch'))
      .patch('/r/:id', h('patch'))
      .ipatch('/r/:id', h('ipatch'))
      .post('/r/:id', h('post'));
    expect(run(r, 'GET', '/r/1')).toBe('get {"id":"1"}');
    expect(run(r, 'PUT', '/r/1')).toBe('put {"name":"1"}');
    for (const m of ['DELETE', 'FETCH', 'PATCH', 'iPATCH', 'POST']) expect(run(r, m, '/r/1')).toBe(`${m.toLowerCase()} {"id":"1"}`);
  });
  it('4.04 and 4.05 outcomes are shared frozen objects; allow lists are in code order', () => {
    const r = new Router<Req, string>().ipatch('/x', h('ip')).get('/x', h('get')).fetch('/x', h('f'));
    const nf = r.route(req('GET', '/y'));
    expect(nf).toEqual({ status: '4.04' });
    expect(r.route(req('GET', '/x/y'))).toBe(nf);
    expect(r.route(req('GET', '/'))).toBe(nf);
    expect(r.route(req('GET', '/x/'))).toBe(nf); // a trailing slash is another resource
    const na = r.route(req('POST', '/x'));
    expect(na).toEqual({ status: '4.05', allow: ['GET', 'FETCH', 'iPATCH'] });
    expect(r.route(req('DELETE', '/x'))).toBe(na);
    expect(Object.isFrozen(na)).toBe(true);
    // Unknown or wrongly-cased methods: 4.05 too (RFC 7252 §5.8).
    expect(run(r, 'HEAD', '/x')).toBe('4.05 GET,FETCH,iPATCH');
    expect(run(r, 'get', '/x')).toBe('4.05 GET,FETCH,iPATCH');
  });
  it('all() serves every method; a specific method wins over it', () => {
    const r = new Router<Req, string>().all('/any', h('all')).get('/any', h('get'));
    expect(run(r, 'GET', '/any')).toBe('get {}');
    for (const m of METHODS.filter((m) => m !== 'GET')) expect(run(r, m, '/any')).toBe('all {}');
    expect(run(r, 'BREW', '/any')).toBe(`4.05 ${METHODS.join(',')}`);
    const p = new Router<Req, string>().all('/p/:id', h('all'));
    expect(run(p, 'iPATCH', '/p/7')).toBe('all {"id":"7"}');
    expect(run(new Router<Req, string>().on('*', '/z', h('z')), 'PUT', '/z')).toBe('z {}');
  });
  it('wildcards match the rest of the path (zero or more segments)', () => {
    const r = new Router<Req, string>()
      .get('/files/*rest', h('files'))
      .get('/files/special', h('special'))
      .get('/files/:name/meta', h('meta'))
      .get('/x/*', h('x'));
    expect(run(r, 'GET', '/files')).toBe('files {"rest":""}');
    expect(run(r, 'GET', '/files/')).toBe('files {"rest":""}');
    expect(run(r, 'GET', '/files/a')).toBe('files {"rest":"a"}');
    expect(run(r, 'GET', '/files/a/b%20c/d')).toBe('files {"rest":"a/b c/d"}');
    expect(run(r, 'GET', '/files/special')).toBe('special {}');
    expect(run(r, 'GET', '/files/special/more')).toBe('files {"rest":"special/more"}');
    expect(run(r, 'GET', '/files/n/meta')).toBe('meta {"name":"n"}');
    expect(run(r, 'GET', '/x/1/2')).toBe('x {"*":"1/2"}');
    expect(run(r, 'PUT', '/files/a/b')).toBe('4.05 GET');
    expect(run(r, 'PUT', '/files/special')).toBe('4.05 GET');
    const root = new Router<Req, string>().get('/*all', h('root'));
    expect(run(root, 'GET', '/')).toBe('root {"all":""}');
    expect(run(root, 'GET', '/a/b')).toBe('root {"all":"a/b"}');
  });
  it('compares literal segments after percent-decoding', () => {
    const r = new Router<Req, string>().get('/caf%C3%A9', h('cafe')).get('/a%2Fb', h('slash')).get('/%3Alit', h('colon')).get('/100%25', h('pct'));
    const te = new TextEncoder();
    const path = (...segs: string[]): string => pathFromOptions(segs.map((s) => ({ number: 11, value: te.encode(s) })));
    expect(run(r, 'GET', path('café'))).toBe('cafe {}');
    expect(run(r, 'GET', '/café')).toBe('cafe {}');
    expect(run(r, 'GET', path('a/b'))).toBe('slash {}');
    expect(run(r, 'GET', path('a', 'b'))).toBe('4.04');
    expect(run(r, 'GET', path(':lit'))).toBe('colon {}');
    expect(run(r, 'GET', path('100%'))).toBe('pct {}');
    expect(r.resources().map((x) => x.pattern)).toEqual(['/café', '/a%2Fb', '/%3Alit', '/100%25']);
  });
  it('treats paths without a leading slash leniently', () => {
    const r = new Router<Req, string>().get('/a/:b', h('ab'));
    expect(run(r, 'GET', 'a/x')).toBe('ab {"b":"x"}');
  });
  it('handles many siblings and very long request paths', () => {
    const r = new Router<Req, string>();
    for (let i = 0; i < 3000; i++) r.get(`/n/r${i}`, h(`r${i}`)).get(`/p/r${i}/:v`, h(`p${i}`));
    for (let i = 0; i < 3000; i += 7) {
      expect(run(r, 'GET', `/n/r${i}`)).toBe(`r${i} {}`);
      expect(run(r, 'GET', `/p/r${i}/x`)).toBe(`p${i} {"v":"x"}`);
    }
    expect(run(r, 'GET', '/n/r3000')).toBe('4.04');
    const deep = `/${'s/'.repeat(50_000)}`;
    expect(run(r, 'GET', deep)).toBe('4.04');
    r.get('/s/*rest', h('deep'));
    const res = r.route(req('GET', deep));
    expect(res.status === undefined && res.params.rest?.length).toBe(deep.length - 3);
  });
  it('gives the same answers as a naive reference matcher on random routes', () => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const words = ['a', 'b', 'c', ''];
    for (let round = 0; round < 30; round++) {
      const r = new Router<Req, string>();
      const routes: { method: Method; segs: string[] }[] = [];
      const seen = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const segs = Array.from({ length: 1 + rnd(3) }, (_, k) => (rnd(3) === 0 ? `:p${k}` : (words[rnd(3)] as string)));
        const method = METHODS[rnd(3)] as Method;
        const key = `${method} ${segs.map((s) => (s.startsWith(':') ? ':' : s)).join('/')}`;
        if (seen.has(key)) continue;
        seen.add(key);
        routes.push({ method, segs });
        r.on(method, `/${segs.join('/')}`, h(`${method} /${segs.join('/')}`));
      }
      // Reference: rank candidates by per-segment specificity (literal before param), first that fits.
      const score = (segs: string[]): string => segs.map((s) => (s.startsWith(':') ? '1' : '0')).join('');
      for (let q = 0; q < 60; q++) {
        const path = Array.from({ length: 1 + rnd(3) }, () => words[rnd(4)] as string);
        const method = METHODS[rnd(4)] as Method;
        const fits = routes.filter(
          (rt) => rt.segs.length === path.length && rt.segs.every((s, k) => (s.startsWith(':') ? path[k] !== '' : s === path[k])),
        );
        fits.sort((x, y) => (score(x.segs) < score(y.segs) ? -1 : score(x.segs) > score(y.segs) ? 1 : 0));
        const hit = fits.find((f) => f.method === method);
        const got: RouteResult<Req, string> = r.route(req(method, `/${path.join('/')}`));
        if (hit !== undefined) {
          expect(got.status === undefined && got.handler(req(method, ''), {})).toBe(`${hit.method} /${hit.segs.join('/')}`);
        } else if (fits.length === 0) {
          expect(got).toEqual({ status: '4.04' });
        } else {
          const allow = METHODS.filter((m) => fits.some((f) => f.method === m));
          expect(got).toEqual({ status: '4.05', allow });
        }
      }
    }
  });
});

describe('Router registration errors', () => {
  it('rejects bad patterns and duplicate registrations with CoapRouteError', () => {
    const r = new Router<Req, string>().get('/d/:id', h('x')).all('/all', h('all'));
    expect(expectRouteError(() => r.get('d', h('x'))).pattern).toBe('d');
    expectRouteError(() => r.get('', h('x')));
    expectRouteError(() => r.get('/a/:', h('x')));
    expectRouteError(() => r.get('/a/:1x', h('x')));
    expectRouteError(() => r.get('/a/:x-y', h('x')));
    expectRouteError(() => r.get('/a/*rest/b', h('x')));
    expectRouteError(() => r.get('/a/*/b', h('x')));
    expectRouteError(() => r.get('/a/*r-x', h('x')));
    expectRouteError(() => r.get('/a/:x/:x', h('x')));
    expectRouteError(() => r.get('/a/:x/*x', h('x')));
    expectRouteError(() => r.get('/a/%E0%A4%A', h('x')));
    const dup = expectRouteError(() => r.get('/d/:other', h('y')));
    expect(dup.message).toContain('already registered');
    expectRouteError(() => r.all('/all', h('again')));
    expectRouteError(() => r.get('/ok', 'nope' as unknown as Handler));
    expectRouteError(() => r.on('HEAD' as Method, '/ok', h('x')));
    // Nothing half-registered by the failures:
    expect(run(r, 'GET', '/ok')).toBe('4.04');
    expect(run(r, 'GET', '/d/1')).toBe('x {"id":"1"}');
  });
});

describe('Router discovery', () => {
  const build = (): Router<Req, string> =>
    new Router<Req, string>()
      .get('/sensors', h('idx'), { ct: 40, title: 'Sensor Index' })
      .get('/sensors/temp', h('t'), { rt: 'temperature-c', if: 'sensor', obs: true })
      .put('/sensors/temp', h('tp'))
      .get('/sensors/light', h('l'), { rt: 'light-lux', if: 'sensor' })
      .get('/devices/:id', h('dev'), { rt: 'device' })
      .get('/things/:id', h('thing'), { href: '/things/1', rt: 'thing', ct: [0, 50] })
      .get('/files/*rest', h('files'))
      .get('/.well-known/core', h('wkc'))
      .get('/plain', h('plain'))
      .get('/a b/ü', h('enc'), { title: undefined });

  it('resources() lists patterns with methods and merged attributes', () => {
    const res = build().resources();
    expect(res.map((x) => x.pattern)).toEqual([
      '/sensors',
      '/sensors/temp',
      '/sensors/light',
      '/devices/:id',
      '/things/:id',
      '/files/*rest',
      '/.well-known/core',
      '/plain',
      '/a b/ü',
    ]);
    const temp = res[1];
    expect(temp?.methods).toEqual(['GET', 'PUT']);
    expect(temp?.attributes).toEqual({ rt: 'temperature-c', if: 'sensor', obs: true });
    expect(res.find((x) => x.pattern === '/devices/:id')?.dynamic).toBe(true);
    expect(res[0]?.dynamic).toBe(false);
    const r = new Router<Req, string>().get('/m', h('a'), { rt: 'one', ct: 0 }).put('/m', h('b'), { rt: 'two' });
    expect(r.resources()[0]?.attributes).toEqual({ rt: 'two', ct: 0 });
    expect(new Router<Req, string>().all('/q', h('q')).resources()[0]?.methods).toEqual(METHODS);
  });

  it('wellKnownCore() advertises literal routes and dynamic ones with an href', () => {
    const text = build().wellKnownCore();
    expect(text).toBe(
      [
        '</sensors>;ct=40;title="Sensor Index"',
        '</sensors/temp>;rt="temperature-c";if="sensor";obs',
        '</sensors/light>;rt="light-lux";if="sensor"',
        '</things/1>;rt="thing";ct="0 50"',
        '</plain>',
        '</a%20b/%C3%BC>',
      ].join(','),
    );
    expect(parseLinks(text)).toHaveLength(6);
  });

  it('wellKnownCore(query) filters per RFC 6690 §4.1', () => {
    const r = build();
    expect(r.wellKnownCore(['rt=light-lux'])).toBe('</sensors/light>;rt="light-lux";if="sensor"');
    expect(r.wellKnownCore(['if=sensor'])).toBe('</sensors/temp>;rt="temperature-c";if="sensor";obs,</sensors/light>;rt="light-lux";if="sensor"');
    expect(r.wellKnownCore(['href=/sensors*']).split(',')).toHaveLength(3);
    expect(r.wellKnownCore(['ct=50'])).toBe('</things/1>;rt="thing";ct="0 50"');
    expect(r.wellKnownCore(['obs'])).toBe('</sensors/temp>;rt="temperature-c";if="sensor";obs');
    expect(r.wellKnownCore(['rt=nothing'])).toBe('');
    expect(r.wellKnownCore([])).toBe(r.wellKnownCore());
  });

  it('regenerates the cached payload after a new registration', () => {
    const r = new Router<Req, string>().get('/a', h('a'));
    expect(r.wellKnownCore()).toBe('</a>');
    r.get('/b', h('b'), { rt: 'x' });
    expect(r.wellKnownCore()).toBe('</a>,</b>;rt="x"');
    r.put('/a', h('a2'), { ct: 0 });
    expect(r.wellKnownCore()).toBe('</a>;ct=0,</b>;rt="x"');
  });

  it('surfaces attribute errors as typed link-format errors', () => {
    const r = new Router<Req, string>().get('/a', h('a'), { 'bad name': 'x' });
    expect(() => r.wellKnownCore()).toThrow(CoapError);
  });
});
