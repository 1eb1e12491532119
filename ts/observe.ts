/**
 * Observing resources over CoAP/UDP (RFC 7641): `observe(url, init)` registers with a GET
 * (or FETCH) carrying Observe 0 and yields the notifications as an async iterable.
 *
 * The protocol rules come from the C core: which notification is newer (RFC 7641 §3.4,
 * tc_obs_fresh) and when the registration must be renewed (§3.3.1, tc_obs_reregister_at);
 * notifications larger than a block are completed block-wise (RFC 7959 §2.6) by the same
 * transfer code as request(). This file keeps the buffer, the timers and the requests: the
 * registration's token (the core generates it; it is learnt from the first response) is
 * reused to register again (§3.3.1) and to deregister (§3.6).
 */
import { OBS_NO_MAX_AGE } from './backend/types';
import type { Received } from './driver/driver';
import { CoapAbortError, CoapBlockwiseError, CoapError, CoapNetworkError, CoapTimeoutError, invalidArgValue, outOfRange } from './errors';
import { IncomingResponse, recordUint } from './incoming';
import { OptionNumber } from './options';
import type { PayloadInit } from './outgoing';
import {
  Call,
  MAX_ECHO_RETRIES,
  Outstanding,
  echoChallenge,
  failure,
  type AgentSocket,
  globalAgent,
  prepare,
  transfers,
  withEcho,
  writeRequest,
  type Agent,
  type RequestOptions,
  type RequestSpec,
  type Route,
} from './client';

const OPT_OBSERVE = OptionNumber.Observe;

/**
 * An observation (RFC 7641) ended with an error response: the server refused the
 * registration, or ended the observation with a 4.xx/5.xx notification (§3.2). `response` is
 * that response.
 */
export class CoapObserveError extends CoapError {
  declare readonly code: 'OBSERVE_ENDED';
  /** The error response (its `code`, e.g. `'4.04'`, options and diagnostic payload). */
  readonly response: IncomingResponse;
  constructor(response: IncomingResponse, message?: string) {
    super(message ?? `the observation ended with ${response.code}`, 'OBSERVE_ENDED');
    this.response = response;
  }
}
/** Notifications kept for a consumer that is not reading, by default. */
const DEFAULT_MAX_BUFFERED = 16;
/**
 * How long past the re-registration time of RFC 7641 §3.3.1 (the latest notification's
 * Max-Age lapsed) the observation waits before registering again: a server that refreshes
 * every Max-Age seconds (e.g. libcoap's /time: Max-Age 1, a notification a second) has its
 * next notification on the way, which makes registering again unnecessary.
 */
const REREGISTER_GRACE_MS = 2000;
/** How long a deregistration (RFC 7641 §3.6) waits for its response without a `timeout`. */
const DEREGISTER_TIMEOUT_MS = 5000;

/** Options of {@link observe}. */
export interface ObserveOptions
  extends Pick<
    RequestOptions,
    'confirmable' | 'options' | 'accept' | 'contentFormat' | 'signal' | 'agent' | 'blockSize' | 'maxBodySize' | 'psk' | 'ca' | 'cert' | 'key' | 'rejectUnauthorized'
  > {
  /** `'GET'` (default) or `'FETCH'` (RFC 8132; give its `payload`), in either case. */
  readonly method?: 'GET' | 'FETCH' | 'get' | 'fetch';
  /** The FETCH payload: a string, or bytes (Uint8Array, ArrayBuffer, any ArrayBufferView). */
  readonly payload?: PayloadInit;
  /**
   * Time in ms to wait for the registration response: the iterator then throws
   * CoapTimeoutError (without it, the RFC's limits apply, as for a request). Also the
   * default bound of the deregistration (see {@link Observation.cancel}).
   */
  readonly timeout?: number;
  /**
   * Notifications kept while the consumer is not reading (default 16); when more arrive the
   * oldest is dropped: only the freshest matters.
   */
  readonly maxBuffered?: number;
}

/** One registration request (kept by the core: it matches every notification). */
class Registration extends Outstanding {
  /** Superseded or ended: the id, once known, is cancelled. */
  cancelled = false;

  constructor(
    private readonly obs: Observation,
    route: Route,
  ) {
    super(route.s);
  }

  protected unwanted(): boolean {
    return this.cancelled;
  }

  protected notSent(rc: number): void {
    this.obs._failed(this, failure(rc));
  }

  /**
   * Forgets the registration (CANCEL): the core answers a notification with its token with
   * RST (§3.6), unless a newer request with the same token is outstanding by then.
   */
  cancel(): void {
    this.cancelled = true;
    this.forget();
  }

  onRecord(b: Received, r: number, last: boolean): void {
    if (last) this.id = 0;
    this.obs._notified(this, b, r);
  }

  onFailure(e: unknown): void {
    this.id = 0;
    this.obs._failed(this, e);
  }
}

/**
 * A deregistration (RFC 7641 §3.6): the registration's GET (FETCH) with Observe 1 and its
 * token. Settles `done` (never rejects) on the response, a failure, or after `timeout` ms.
 */
class Deregistration extends Outstanding {
  private finished = false;
  private timer: NodeJS.Timeout | undefined;
  private deadline = Infinity;
  private resolve: (() => void) | undefined;
  readonly done: Promise<void>;

  constructor(s: AgentSocket, timeout: number) {
    super(s);
    this.done = new Promise<void>((resolve) => (this.resolve = resolve));
    this.limit(timeout);
  }

  protected unwanted(): boolean {
    return this.finished;
  }

  protected notSent(): void {
    this.finish();
  }

  /** Gives up after `timeout` ms from now, unless an earlier limit applies. */
  limit(timeout: number): void {
    const at = performance.now() + timeout;
    if (this.finished || at >= this.deadline) return;
    this.deadline = at;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.stop(), timeout);
  }

  /** Gives up: the core forgets the request (if it is still outstanding). */
  stop(): void {
    this.forget();
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.resolve?.();
  }

  onRecord(_b: Received, _r: number, last: boolean): void {
    if (last) this.id = 0;
    this.stop();
  }

  onFailure(): void {
    this.id = 0;
    this.finish();
  }
}

/**
 * An observation: an async iterable of the notifications (the registration response first),
 * newest-wins ordered (stale ones, RFC 7641 §3.4, are dropped). It ends
 *  - normally (iteration finishes) after {@link cancel}, `break`, or a response without
 *    Observe (the server does not observe the resource, or stopped: that response is
 *    yielded last);
 *  - with an error thrown by the iterator: CoapObserveError for a 4.xx/5.xx response (the
 *    registration refused, or the observation ended by the server, §3.2), CoapAbortError
 *    (the signal), CoapTimeoutError (no registration response within `timeout`, or the
 *    server stopped answering), CoapNetworkError (agent closed...), CoapBlockwiseError (a
 *    large notification could not be completed).
 * It re-registers (§3.3.1, the same token) when the latest notification's Max-Age lapsed
 * without a newer one, and completes notifications larger than a block (Block2 GETs without
 * Observe, RFC 7959 §2.6) before yielding them. Ended by the client ({@link cancel}, `break`,
 * the signal, a notification that could not be completed), it deregisters (§3.6).
 */
export class Observation implements AsyncIterable<IncomingResponse> {
  private readonly queue: IncomingResponse[] = [];
  private readonly waiters: { resolve: (r: IteratorResult<IncomingResponse>) => void; reject: (e: unknown) => void }[] = [];
  private readonly max: number;
  private ended = false;
  /** Echo challenges (4.01) answered in a row. */
  private echoes = 0;
  /** The error to throw once the buffer is drained. */
  private error: unknown = undefined;
  private route: Route | undefined;
  private spec: RequestSpec | undefined;
  private reg: Registration | undefined;
  /** The registration's token, from its first response (the core generated it). */
  private token: Uint8Array | undefined;
  /** The deregistration, once the observation ended with one. */
  private deregistration: Deregistration | undefined;
  /** Observe value and arrival time (ms) of the freshest notification. */
  private freshV = 0;
  private freshT = -1;
  private completing: Call | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private regTimer: NodeJS.Timeout | undefined;
  private readonly onAbort: (() => void) | undefined;
  private _stale = 0;
  private _dropped = 0;

  /** @internal use {@link observe} */
  constructor(
    url: string | URL,
    private readonly init: ObserveOptions,
  ) {
    const max = init.maxBuffered ?? DEFAULT_MAX_BUFFERED;
    this.max = max;
    const signal = init.signal;
    if (signal !== undefined) {
      this.onAbort = () => this.end(new CoapAbortError('the observation was aborted', { cause: signal.reason }));
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
    if (!Number.isInteger(max) || max < 1) {
      this.end(outOfRange('maxBuffered', 'a positive integer', max));
      return;
    }
    const method = typeof init.method === 'string' ? init.method.toUpperCase() : init.method;
    if (method !== undefined && method !== 'GET' && method !== 'FETCH') {
      this.end(invalidArgValue('observe: method', "'GET' or 'FETCH'", init.method));
      return;
    }
    const timeout = init.timeout;
    if (timeout !== undefined) {
      if (!(timeout >= 0 && timeout <= 2147483647)) {
        this.end(outOfRange('timeout', '0..2147483647 ms', timeout));
        return;
      }
      this.regTimer = setTimeout(() => this.end(new CoapTimeoutError(`no registration response within ${timeout} ms`)), timeout);
    }
    const agent: Agent = init.agent ?? globalAgent;
    try {
      agent._route(
        url,
        signal,
        (e) => this.end(e),
        (route) => {
          if (this.ended) return;
          const spec = prepare(route.t, init);
          if (spec instanceof Error) {
            this.end(spec);
            return;
          }
          this.route = route;
          this.spec = spec;
          this.reg = this.register();
        },
        init,
      );
    } catch (e) {
      this.end(e);
    }
  }

  /** Notifications dropped as stale (an older Observe value than one already received). */
  get stale(): number {
    return this._stale;
  }

  /** Notifications dropped because the buffer was full (`maxBuffered`). */
  get dropped(): number {
    return this._dropped;
  }

  /** Whether the observation has ended (notifications may still be buffered). */
  get closed(): boolean {
    return this.ended;
  }

  /**
   * Ends the observation: the iteration finishes once the buffer is drained. Deregisters
   * (RFC 7641 §3.6): the core forgets the registration, and the same GET (FETCH) with
   * Observe 1 and the registration's token is sent; resolves (never rejects) when its
   * response arrives, it fails, or after `timeout` ms (default: the observation's `timeout`,
   * else 5 s). Before any response to the registration (its token unknown) nothing is sent:
   * the core answers a late response with RST, which removes the observer too. Called again,
   * or after the observation ended (`break`, the signal), it returns the deregistration under
   * way, if any (`timeout` can only shorten its wait).
   * @throws (rejects) RangeError for a bad `timeout` (nothing else happens then).
   */
  cancel(options: { readonly timeout?: number } = {}): Promise<void> {
    const t = options.timeout;
    if (t !== undefined && !(t >= 0 && t <= 2147483647)) return Promise.reject(outOfRange('timeout', '0..2147483647 ms', t));
    if (!this.ended) this.end(undefined, true, t);
    else if (t !== undefined) this.deregistration?.limit(t);
    return this.deregistration?.done ?? Promise.resolve();
  }

  [Symbol.asyncIterator](): AsyncIterator<IncomingResponse> {
    return {
      next: () => this.next(),
      // `break`: ends at once; the deregistration goes on (await cancel() to wait for it).
      return: (): Promise<IteratorResult<IncomingResponse>> => {
        void this.cancel();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private next(): Promise<IteratorResult<IncomingResponse>> {
    const r = this.queue.shift();
    if (r !== undefined) return Promise.resolve({ value: r, done: false });
    if (this.ended) {
      if (this.error !== undefined) {
        const e = this.error;
        this.error = undefined;
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /**
   * Sends a registration (GET/FETCH with Observe 0, kept by the core for the notifications),
   * with `token` (a re-registration) or a token the core generates.
   */
  private register(token?: Uint8Array, echo?: Uint8Array): Registration | undefined {
    const route = this.route as Route;
    const spec = this.spec as RequestSpec;
    const reg = new Registration(this, route);
    const extra = [{ number: OPT_OBSERVE, value: 0 }];
    const e = writeRequest(route, spec, echo !== undefined ? withEcho(extra, echo) : extra, spec.payload, true, reg.onId, token);
    if (e !== undefined) {
      this.end(e);
      return undefined;
    }
    return reg;
  }

  /** A response to a registration. @internal */
  _notified(reg: Registration, b: Received, r: number): void {
    if (this.ended || reg !== this.reg) return;
    if (this.token === undefined) {
      const off = b.tokenOffset(r);
      this.token = b.bytes.slice(off, off + b.tokenLength(r));
    }
    if (this.regTimer !== undefined) {
      clearTimeout(this.regTimer);
      this.regTimer = undefined;
    }
    const now = performance.now();
    const echo = echoChallenge(b, r);
    if (echo !== undefined && this.echoes < MAX_ECHO_RETRIES) {
      // RFC 9175 §2.4: the server wants proof that we receive before it notifies: register
      // again with its Echo value (a new request; the old one is forgotten first)
      this.echoes++;
      this.token = undefined;
      reg.cancel();
      this.reg = this.register(undefined, echo);
      return;
    }
    this.echoes = 0;
    if (b.code(r) >> 5 !== 2) {
      // The server ended (or refused) the relation: nothing to deregister.
      this.end(new CoapObserveError(new IncomingResponse(b, r)), false);
      return;
    }
    const v = recordUint(b, r, OPT_OBSERVE);
    if (v === undefined) {
      // Not (or no longer) observed: this response is the last (RFC 7641 §3.2, §4.1).
      this.deliver(b, r, true);
      return;
    }
    const tx = transfers((this.route as Route).s.ep.backend);
    if (this.freshT >= 0 && !tx.obsFresh(this.freshV, this.freshT, v, now)) {
      this._stale++;
      return;
    }
    this.freshV = v;
    this.freshT = now;
    const maxAge = recordUint(b, r, OptionNumber.MaxAge);
    const at = tx.obsReregisterAt(now, maxAge ?? OBS_NO_MAX_AGE, 0);
    this.scheduleRenewal(at - now + REREGISTER_GRACE_MS);
    this.deliver(b, r, false);
  }

  /** A registration failed (timeout, RST, agent closed). @internal */
  _failed(reg: Registration, e: unknown): void {
    if (reg === this.reg) this.end(e);
  }

  private scheduleRenewal(ms: number): void {
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    if (!(ms <= 2147483647)) return;
    this.renewTimer = setTimeout(() => {
      this.renewTimer = undefined;
      if (this.ended) return;
      // RFC 7641 §3.3.1: the latest notification is stale; register again with the same
      // token. The core takes a token only once per peer: the old request is cancelled first
      // (records run in order); the new one matches the notifications from then on.
      this.reg?.cancel();
      this.reg = this.register(this.token);
    }, Math.max(0, ms));
    (this.renewTimer as { unref?: () => void }).unref?.(); // Node: not kept alive by it
  }

  /** Yields notification r, completed block-wise first when it carries Block2. */
  private deliver(b: Received, r: number, last: boolean): void {
    const spec = this.spec as RequestSpec;
    if (!spec.auto || recordUint(b, r, OptionNumber.Block2) === undefined) {
      this.push(new IncomingResponse(b, r));
      if (last) this.end(undefined, false);
      return;
    }
    const old = this.completing;
    const call: Call = new Call(
      this.route as Route,
      spec,
      undefined,
      undefined,
      (full) => {
        if (this.completing !== call) return;
        this.completing = undefined;
        this.push(full);
        if (last) this.end(undefined, false);
      },
      (e) => {
        if (this.completing !== call) return;
        this.completing = undefined;
        // A representation that changed under the download: a newer notification follows.
        if (e instanceof CoapBlockwiseError && e.code === 'CHANGED' && !last) return;
        this.end(e, !last);
      },
    );
    this.completing = call;
    // A newer notification supersedes one still being completed.
    old?.cancel(new CoapNetworkError('SUPERSEDED', 'a newer notification arrived'));
    call.continueFrom(b, r);
  }

  /**
   * Sends the deregistration (§3.6): the registration's request with Observe 1 and its
   * `token`, not kept (the caller cancelled the registration first: the core takes a token
   * once per peer).
   */
  private deregister(token: Uint8Array, timeout: number): Deregistration {
    const route = this.route as Route;
    const spec = this.spec as RequestSpec;
    const d = new Deregistration(route.s, timeout);
    if (writeRequest(route, spec, [{ number: OPT_OBSERVE, value: 1 }], spec.payload, false, d.onId, token) !== undefined) d.stop();
    return d;
  }

  private push(resp: IncomingResponse): void {
    const w = this.waiters.shift();
    if (w !== undefined) {
      w.resolve({ value: resp, done: false });
      return;
    }
    this.queue.push(resp);
    if (this.queue.length > this.max) {
      this.queue.shift();
      this._dropped++;
    }
  }

  /**
   * Ends the observation with `error` (undefined: normally). `deregister`: the server may
   * still hold the registration, so a live one is deregistered (within `timeout` ms, default
   * the observation's timeout, else DEREGISTER_TIMEOUT_MS).
   */
  private end(error: unknown, deregister = true, timeout?: number): void {
    if (this.ended) return;
    this.ended = true;
    if (this.regTimer !== undefined) clearTimeout(this.regTimer);
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
    if (this.onAbort !== undefined) this.init.signal?.removeEventListener('abort', this.onAbort);
    const reg = this.reg;
    this.reg = undefined;
    if (reg !== undefined) {
      // Live: its id is known and it has not failed; answered: its token is known.
      const live = reg.id !== 0 && this.token !== undefined;
      reg.cancel();
      if (deregister && live) this.deregistration = this.deregister(this.token as Uint8Array, timeout ?? this.init.timeout ?? DEREGISTER_TIMEOUT_MS);
    }
    const c = this.completing;
    this.completing = undefined;
    c?.cancel(new CoapNetworkError('CLOSED', 'the observation ended'));
    this.error = error;
    for (const w of this.waiters.splice(0)) {
      if (this.error !== undefined) {
        const e = this.error;
        this.error = undefined;
        w.reject(e);
      } else w.resolve({ value: undefined, done: true });
    }
  }
}

/**
 * Observes a resource (RFC 7641) over CoAP/UDP: registers with a GET carrying Observe 0 and
 * returns an {@link Observation}, an async iterable of the notifications (the registration
 * response first).
 *
 * ```ts
 * const obs = observe('coap://[::1]/time', { signal: AbortSignal.timeout(60_000) });
 * for await (const n of obs) {
 *   console.log(n.text());
 *   if (done) break; // cancels the observation
 * }
 * ```
 */
export function observe(url: string | URL, init: ObserveOptions = {}): Observation {
  return new Observation(url, init);
}
