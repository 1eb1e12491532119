/**
 * Request router for CoAP servers: method + path → handler, with path
 * parameters, wildcards, 4.04 / 4.05 outcomes and RFC 6690
 * `/.well-known/core` generation. Pure TypeScript.
 *
 * Matching walks a segment trie over the request path without splitting it:
 * O(segments) per request, and no allocation except the params object (none
 * at all for routes without parameters, and for 4.04 / 4.05 outcomes).
 */
import { CoapError } from './errors';
import { filterLinks, formatLinks, type Link, type LinkAttributeValue, type LinkAttributes } from './linkformat';
import { METHODS, methodIndex, methodIndexAnyCase, type Method, type MethodName } from './methods';
import { encodePathSegment } from './uri';
import type { IncomingRequest, RouteParams } from './incoming';
import type { ResponseInit } from './outgoing';

export type { RouteParams };

/** A route handler; the router only stores and returns it. */
export type RouteHandler<Req, Res> = (req: Req, params: RouteParams) => Res;

/**
 * Discovery attributes of a route: RFC 6690 link attributes (`rt`, `if`,
 * `ct`, `sz`, `obs`, `title`, ...) plus `href`, the link target to
 * advertise (needed for routes with parameters or wildcards, which are not
 * advertised otherwise).
 */
export interface ResourceAttributes {
  /** Link target to advertise instead of the pattern (e.g. `'/devices/1'`). */
  readonly href?: string;
  /** Link attributes. `undefined` values are ignored. */
  readonly [name: string]: LinkAttributeValue | undefined;
}

/** A successful {@link Router.route} outcome. */
export interface RouteMatch<Req, Res> {
  /** Always undefined on a match (lets `status` discriminate the outcome). */
  readonly status?: undefined;
  /** The handler registered for the method and path. */
  readonly handler: RouteHandler<Req, Res>;
  /** Decoded path parameters (a shared frozen empty object when there are none). */
  readonly params: RouteParams;
  /** The route's pattern, normalized (e.g. `'/devices/:id'`). */
  readonly pattern: string;
}

/** No route has the request's path. */
export interface RouteNotFound {
  /** `'4.04'` Not Found. */
  readonly status: '4.04';
}

/** A route has the path but not the method. */
export interface RouteMethodNotAllowed {
  /** `'4.05'` Method Not Allowed. */
  readonly status: '4.05';
  /** Methods that the path does support, in code order. */
  readonly allow: readonly Method[];
}

/** Outcome of {@link Router.route}. */
export type RouteResult<Req, Res> = RouteMatch<Req, Res> | RouteNotFound | RouteMethodNotAllowed;

/** A registered resource, as listed by {@link Router.resources}. */
export interface RouteResource {
  /** Normalized pattern. */
  readonly pattern: string;
  /** Methods registered on the pattern (all of them for `all()`), in code order. */
  readonly methods: readonly Method[];
  /** Discovery attributes (merged over all registrations of the pattern; later ones win). */
  readonly attributes: ResourceAttributes;
  /** Whether the pattern has `:params` or a wildcard. */
  readonly dynamic: boolean;
}

/** Thrown by route registration for an invalid or conflicting pattern; `code` `INVALID_ROUTE`. */
export class CoapRouteError extends CoapError {
  declare readonly code: 'INVALID_ROUTE';
  /** The pattern that was rejected. */
  readonly pattern: string;
  constructor(pattern: string, message: string) {
    super(`${message}: ${JSON.stringify(pattern)}`, 'INVALID_ROUTE');
    this.pattern = pattern;
  }
}

const EMPTY_PARAMS: RouteParams = Object.freeze({});
const NOT_FOUND: RouteNotFound = Object.freeze({ status: '4.04' });
const ALL_MASK = (1 << METHODS.length) - 1;
const PARAM_NAME_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A registration: handler plus where its params sit in the path. */
interface Entry<Req, Res> {
  readonly handler: RouteHandler<Req, Res>;
  readonly pattern: string;
  /** Param names and the segment depth each one captures. */
  readonly paramNames: readonly string[];
  readonly paramDepths: readonly number[];
  /** Wildcard param name, or undefined. */
  readonly wildcard: string | undefined;
  /** Preallocated result for routes without params or wildcard. */
  readonly fixed: RouteMatch<Req, Res> | undefined;
}

/** A trie node: one path segment position. */
class Node<Req, Res> {
  /** Literal children by segment hash (collisions resolved by comparing `key`). */
  lit: Map<number, Node<Req, Res>[]> | undefined;
  /** Child for a `:param` segment. */
  param: Node<Req, Res> | undefined;
  /** Terminal for a wildcard at this position (matches the rest of the path). */
  wild: Node<Req, Res> | undefined;
  /** Handlers by method index, and the `all()` handler. */
  readonly methods: (Entry<Req, Res> | undefined)[] = new Array<Entry<Req, Res> | undefined>(METHODS.length).fill(undefined);
  any: Entry<Req, Res> | undefined;
  /** Bitmask of methods served here (bit i = METHODS[i]). */
  mask = 0;
  constructor(readonly key: string) {}

  lookup(mi: number): Entry<Req, Res> | undefined {
    if (mi < 0) return undefined;
    return this.methods[mi] ?? this.any;
  }
}

/** FNV-1a over s[start, end), folded to 30 bits. */
function hashSeg(s: string, start: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h & 0x3fffffff; // stays a small integer: no boxing on the Map lookup
}

function decodeSeg(raw: string): string {
  if (raw.indexOf('%') < 0) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw; // malformed escape: hand it over undecoded
  }
}

/** The escaping `pathFromOptions` applies to a segment: only `%` and `/`. */
function escapeSeg(s: string): string {
  return s.replace(/%/g, '%25').replace(/\//g, '%2F');
}

type ParsedSegment =
  | { readonly kind: 'lit'; readonly text: string; readonly decoded: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'wild'; readonly name: string };

function parsePattern(pattern: string): ParsedSegment[] {
  if (typeof pattern !== 'string' || !pattern.startsWith('/')) {
    throw new CoapRouteError(String(pattern), 'route pattern must start with "/"');
  }
  if (pattern === '/') return [];
  const out: ParsedSegment[] = [];
  const names = new Set<string>();
  const raw = pattern.slice(1).split('/');
  for (let i = 0; i < raw.length; i++) {
    const seg = raw[i] as string;
    if (seg.startsWith(':')) {
      const name = seg.slice(1);
      if (!PARAM_NAME_RE.test(name)) throw new CoapRouteError(pattern, `invalid parameter name ${JSON.stringify(name)}`);
      if (names.has(name)) throw new CoapRouteError(pattern, `duplicate parameter name ${JSON.stringify(name)}`);
      names.add(name);
      out.push({ kind: 'param', name });
    } else if (seg.startsWith('*')) {
      if (i !== raw.length - 1) throw new CoapRouteError(pattern, 'a wildcard must be the last segment');
      const name = seg === '*' ? '*' : seg.slice(1);
      if (name !== '*' && !PARAM_NAME_RE.test(name)) throw new CoapRouteError(pattern, `invalid wildcard name ${JSON.stringify(name)}`);
      if (names.has(name)) throw new CoapRouteError(pattern, `duplicate parameter name ${JSON.stringify(name)}`);
      out.push({ kind: 'wild', name });
    } else {
      let decoded: string;
      try {
        decoded = decodeURIComponent(seg);
      } catch {
        throw new CoapRouteError(pattern, `malformed percent-escape in segment ${JSON.stringify(seg)}`);
      }
      out.push({ kind: 'lit', text: escapeSeg(decoded), decoded });
    }
  }
  return out;
}

function normalizedPattern(segs: readonly ParsedSegment[]): string {
  if (segs.length === 0) return '/';
  let s = '';
  for (const g of segs) {
    s += '/';
    if (g.kind === 'lit') s += g.text.startsWith(':') || g.text.startsWith('*') ? `%${g.text.charCodeAt(0).toString(16).toUpperCase()}${g.text.slice(1)}` : g.text;
    else if (g.kind === 'param') s += `:${g.name}`;
    else s += g.name === '*' ? '*' : `*${g.name}`;
  }
  return s;
}

interface ResourceRecord {
  readonly pattern: string;
  readonly segs: readonly ParsedSegment[];
  mask: number;
  attributes: Record<string, LinkAttributeValue | undefined>;
}

/**
 * Routes requests by method and path.
 *
 * Patterns are absolute paths whose segments are literals, `:name`
 * parameters (one whole non-empty segment) or, as the last segment, a
 * wildcard `*name` / `*` matching the rest of the path (zero or more
 * segments; params key `name` / `'*'`). Literal segments are compared after
 * percent-decoding, so `/caf%C3%A9` and `/café` are the same route; to have
 * a literal segment that starts with `:` or `*`, escape it (`%3A`, `%2A`).
 *
 * Request paths are expected as `pathFromOptions` (./uri) produces them: the
 * Uri-Path values joined by `/`, with only `%` and `/` escaped. A trailing
 * slash is an extra empty segment (`/a/` ≠ `/a`), as in CoAP.
 *
 * Precedence at every segment: literal, then parameter, then wildcard, with
 * backtracking; the first route in that order that serves the method wins
 * (so `GET /d/new` goes to a literal `/d/new` and `PUT /d/new` to `/d/:id`
 * if only that one has PUT). If routes match the path but none serves the
 * method — or the method is not a {@link Method} — the outcome is 4.05 with
 * the union of their methods.
 *
 * @typeParam Req - request type: at least `method` (a {@link Method} name)
 *   and `path`. Default: the server's {@link IncomingRequest}.
 * @typeParam Res - what handlers return. Default: what a server handler returns
 *   (`ResponseInit | Promise<ResponseInit>`), so `new Router()` is ready for `createServer`.
 */
export class Router<Req extends { method: string; path: string } = IncomingRequest, Res = ResponseInit | Promise<ResponseInit>> {
  private readonly root = new Node<Req, Res>('');
  /** Literal-only paths → terminal node, for a one-lookup fast path. */
  private readonly fixedPaths = new Map<string, Node<Req, Res>>();
  private readonly records = new Map<string, ResourceRecord>();
  private readonly notAllowed: (RouteMethodNotAllowed | undefined)[] = [];
  /** Scratch for param positions during a match (route() is synchronous and calls no user code). */
  private starts = new Int32Array(8);
  private ends = new Int32Array(8);
  private wildStart = -1;
  private wellKnownCache: string | undefined;

  /** Registers a GET handler. */
  get(pattern: string, handler: RouteHandler<Req, Res>, attrs?: ResourceAttributes): this {
    return this.on('GET', pattern, handler, attrs);
  }
  /** Registers a POST handler. */
  post(pattern: string, handler: RouteHandler<Req, Res>, attrs?: ResourceAttributes): this {
    return this.on('POST', pattern, handler, attrs);
  }
  /** Registers a PUT handler. */
  put(pattern: string, handler: RouteHandler<Req, Res>, attrs?: ResourceAttributes): this {
    return this.on('PUT', pattern, handler, attrs);
  }
  /** Registers a DELETE handler. */
  delete(pattern: string, handler: RouteHandler<Req, Res>, attrs?: ResourceAttributes): this {
    return this.on('DELETE', pattern, handler, attrs);
  }
  /** Registers a FETCH handler (RFC 8132). */
  fetch(pattern: string, handler: RouteHandler<Req, Res>, attrs?: ResourceAttributes): this {
    return this.on('FETCH', pattern, handler, attrs);
  }
  /** Registers a PATCH handler (RFC 8132). */
  patch(pattern: string, handler: RouteHandler<Req, Res>, attrs?: ResourceAttributes): this {
    return this.on('PATCH', pattern, handler, attrs);
  }
  /** Registers an iPATCH handler (RFC 8132). */
  ipatch(pattern: string, handler: RouteHandler<Req, Res>, attrs?: ResourceAttributes): this {
    return this.on('iPATCH', pattern, handler, attrs);
  }
  /**
   * Registers a handler for every {@link Method} on the pattern; a handler
   * registered for a specific method on the same pattern takes precedence.
   */
  all(pattern: string, handler: RouteHandler<Req, Res>, attrs?: ResourceAttributes): this {
    return this.on('*', pattern, handler, attrs);
  }

  /**
   * Registers a handler for `method` (`'*'` = every method, like
   * {@link Router.all}).
   * @throws CoapRouteError for an invalid pattern (not starting with `/`, a
   *   bad parameter name, a wildcard that is not last, a duplicate parameter
   *   name, a malformed percent-escape) or when the same method is already
   *   registered on an equivalent pattern.
   */
  on(method: MethodName | '*', pattern: string, handler: RouteHandler<Req, Res>, attrs?: ResourceAttributes): this {
    if (typeof handler !== 'function') throw new CoapRouteError(String(pattern), 'handler must be a function');
    const mi = method === '*' ? -1 : methodIndexAnyCase(method);
    if (method !== '*' && mi < 0) throw new CoapRouteError(String(pattern), `unknown method ${JSON.stringify(method)}`);
    const segs = parsePattern(pattern);
    const norm = normalizedPattern(segs);

    let node = this.root;
    const paramNames: string[] = [];
    const paramDepths: number[] = [];
    let wildcard: string | undefined;
    let fixed = true;
    for (let d = 0; d < segs.length; d++) {
      const g = segs[d] as ParsedSegment;
      if (g.kind === 'lit') {
        const h = hashSeg(g.text, 0, g.text.length);
        node.lit ??= new Map();
        let bucket = node.lit.get(h);
        if (bucket === undefined) node.lit.set(h, (bucket = []));
        let child = bucket.find((c) => c.key === g.text);
        if (child === undefined) bucket.push((child = new Node<Req, Res>(g.text)));
        node = child;
      } else if (g.kind === 'param') {
        fixed = false;
        paramNames.push(g.name);
        paramDepths.push(d);
        node = node.param ??= new Node<Req, Res>('');
      } else {
        fixed = false;
        wildcard = g.name;
        node = node.wild ??= new Node<Req, Res>('');
      }
    }
    if (mi < 0 ? node.any !== undefined : node.methods[mi] !== undefined) {
      throw new CoapRouteError(pattern, `${method === '*' ? 'all()' : method} is already registered on this path`);
    }
    const entry: Entry<Req, Res> = {
      handler,
      pattern: norm,
      paramNames,
      paramDepths,
      wildcard,
      fixed: fixed ? Object.freeze({ handler, params: EMPTY_PARAMS, pattern: norm }) : undefined,
    };
    if (mi < 0) {
      node.any = entry;
      node.mask = ALL_MASK;
    } else {
      node.methods[mi] = entry;
      node.mask |= 1 << mi;
    }
    if (fixed) {
      // Keyed by the request-path form (segments escaped like pathFromOptions), not the display pattern.
      this.fixedPaths.set(segs.length === 0 ? '/' : segs.map((g) => `/${(g as { text: string }).text}`).join(''), node);
    }
    if (segs.length > this.starts.length) {
      this.starts = new Int32Array(segs.length * 2);
      this.ends = new Int32Array(segs.length * 2);
    }

    let rec = this.records.get(norm);
    if (rec === undefined) this.records.set(norm, (rec = { pattern: norm, segs, mask: 0, attributes: {} }));
    rec.mask |= mi < 0 ? ALL_MASK : 1 << mi;
    if (attrs !== undefined) {
      for (const k of Object.keys(attrs)) {
        Object.defineProperty(rec.attributes, k, { value: attrs[k], enumerable: true, writable: true, configurable: true });
      }
    }
    this.wellKnownCache = undefined;
    return this;
  }

  /**
   * Finds the handler for a request.
   *
   * @returns `{ handler, params, pattern }` on a match; `{ status: '4.04' }`
   *   when no route has the path; `{ status: '4.05', allow }` when routes
   *   have the path but not the method. The 4.04 / 4.05 objects and the
   *   results of parameterless routes are shared and frozen.
   */
  route(req: Req): RouteResult<Req, Res> {
    const path = req.path;
    const mi = methodIndex(req.method);
    const fixedNode = this.fixedPaths.get(path === '' ? '/' : path);
    if (fixedNode !== undefined && mi >= 0) {
      const e = fixedNode.methods[mi] ?? fixedNode.any;
      if (e !== undefined) return e.fixed as RouteMatch<Req, Res>;
    }
    const start = firstSegment(path);
    this.wildStart = -1;
    const e = this.match(this.root, path, start, 0, mi);
    if (e !== undefined) {
      if (e.fixed !== undefined) return e.fixed;
      const params: Record<string, string> = {};
      const names = e.paramNames;
      for (let k = 0; k < names.length; k++) {
        const d = e.paramDepths[k] as number;
        params[names[k] as string] = decodeSeg(path.slice(this.starts[d], this.ends[d]));
      }
      if (e.wildcard !== undefined) params[e.wildcard] = this.wildStart < 0 ? '' : decodeSeg(path.slice(this.wildStart));
      return { handler: e.handler, params, pattern: e.pattern };
    }
    const mask = this.collect(this.root, path, start);
    if (mask === 0) return NOT_FOUND;
    let r = this.notAllowed[mask];
    if (r === undefined) {
      r = Object.freeze({ status: '4.05', allow: Object.freeze(METHODS.filter((_, i) => (mask & (1 << i)) !== 0)) });
      this.notAllowed[mask] = r;
    }
    return r;
  }

  /** Depth-first match in precedence order; `pos` = start of the next segment, -1 at the end. */
  private match(node: Node<Req, Res>, path: string, pos: number, depth: number, mi: number): Entry<Req, Res> | undefined {
    if (pos < 0) {
      const e = node.lookup(mi);
      if (e !== undefined) return e;
      if (node.wild !== undefined) {
        this.wildStart = -1;
        return node.wild.lookup(mi);
      }
      return undefined;
    }
    let end = path.indexOf('/', pos);
    let next: number;
    if (end < 0) {
      end = path.length;
      next = -1;
    } else {
      next = end + 1;
    }
    if (node.lit !== undefined) {
      const bucket = node.lit.get(hashSeg(path, pos, end));
      if (bucket !== undefined) {
        for (let k = 0; k < bucket.length; k++) {
          const c = bucket[k] as Node<Req, Res>;
          if (c.key.length === end - pos && path.startsWith(c.key, pos)) {
            const e = this.match(c, path, next, depth + 1, mi);
            if (e !== undefined) return e;
          }
        }
      }
    }
    if (node.param !== undefined && end > pos) {
      const e = this.match(node.param, path, next, depth + 1, mi);
      if (e !== undefined) {
        this.starts[depth] = pos;
        this.ends[depth] = end;
        return e;
      }
    }
    if (node.wild !== undefined) {
      const e = node.wild.lookup(mi);
      if (e !== undefined) {
        this.wildStart = pos;
        return e;
      }
    }
    return undefined;
  }

  /** Union of the method masks of every route matching the path (4.05 path only). */
  private collect(node: Node<Req, Res>, path: string, pos: number): number {
    if (pos < 0) return node.mask | (node.wild?.mask ?? 0);
    let end = path.indexOf('/', pos);
    let next: number;
    if (end < 0) {
      end = path.length;
      next = -1;
    } else {
      next = end + 1;
    }
    let mask = node.wild?.mask ?? 0;
    const bucket = node.lit?.get(hashSeg(path, pos, end));
    if (bucket !== undefined) {
      for (const c of bucket) {
        if (c.key.length === end - pos && path.startsWith(c.key, pos)) mask |= this.collect(c, path, next);
      }
    }
    if (node.param !== undefined && end > pos) mask |= this.collect(node.param, path, next);
    return mask;
  }

  /**
   * Whether the resource of a normalized pattern (as {@link RouteMatch.pattern} gives it) is
   * observable: its discovery attributes carry `obs` (RFC 6690 / RFC 7641 §6), e.g.
   * `router.get('/time', handler, { obs: true })`.
   */
  observable(pattern: string): boolean {
    const a = this.records.get(pattern)?.attributes.obs;
    return a !== undefined && a !== false;
  }

  /** The registered resources, one per distinct normalized pattern, in registration order. */
  resources(): RouteResource[] {
    const out: RouteResource[] = [];
    for (const r of this.records.values()) {
      out.push({
        pattern: r.pattern,
        methods: METHODS.filter((_, i) => (r.mask & (1 << i)) !== 0),
        attributes: { ...r.attributes },
        dynamic: r.segs.some((g) => g.kind !== 'lit'),
      });
    }
    return out;
  }

  /**
   * The links {@link Router.wellKnownCore} advertises: one per resource,
   * with target `href` from its attributes or else its literal path
   * (percent-encoded per RFC 7252 §6.5). Skipped: patterns with parameters or
   * wildcards unless they give `href`, and `/.well-known/core` itself unless
   * it gives `href`.
   */
  links(): Link[] {
    const out: Link[] = [];
    for (const r of this.records.values()) {
      const { href, ...rest } = r.attributes;
      let target: string;
      if (typeof href === 'string') {
        target = href;
      } else {
        if (r.segs.some((g) => g.kind !== 'lit')) continue;
        if (r.pattern === '/.well-known/core') continue;
        target = r.segs.length === 0 ? '/' : r.segs.map((g) => `/${encodePathSegment((g as { decoded: string }).decoded)}`).join('');
      }
      const attributes: LinkAttributes = {};
      let any = false;
      for (const k of Object.keys(rest)) {
        const v = rest[k];
        if (v === undefined) continue;
        Object.defineProperty(attributes, k, { value: v, enumerable: true, writable: true, configurable: true });
        any = true;
      }
      out.push(any ? { href: target, attributes } : { href: target });
    }
    return out;
  }

  /**
   * The RFC 6690 `/.well-known/core` payload (content-format 40) for the
   * routes ({@link Router.links}), filtered by the request's Uri-Query
   * values (RFC 6690 §4.1, see `filterLinks`). The unfiltered payload is
   * cached until the next registration.
   *
   * @throws CoapLinkFormatError if route attributes cannot be formatted.
   */
  wellKnownCore(query?: readonly string[]): string {
    if (query === undefined || query.length === 0) {
      return (this.wellKnownCache ??= formatLinks(this.links()));
    }
    return formatLinks(filterLinks(this.links(), query));
  }
}

/** Index of the first segment of a request path, or -1 for `''` / `'/'`. */
function firstSegment(path: string): number {
  if (path.length === 0) return -1;
  if (path.charCodeAt(0) !== 0x2f) return 0;
  return path.length === 1 ? -1 : 1;
}
