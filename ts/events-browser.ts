/**
 * The browser bundle's `node:events`: scripts/build.mjs resolves `node:events` to this module
 * in dist/turbocoap.browser.mjs (no Node built-ins in the bundle). The EventEmitter subset the
 * classes of the bundle (CoapConnection) offer: on / addListener / prependListener / once /
 * off / removeListener / removeAllListeners / emit / listeners / listenerCount, with Node's
 * semantics (listeners run synchronously in order; an 'error' event without a listener throws).
 *
 * @internal
 */
type Listener = (...args: any[]) => void;

export class EventEmitter {
  private _events: Map<string | symbol, Listener[]> = new Map();

  on(event: string | symbol, fn: Listener): this {
    return this.addListener(event, fn);
  }
  addListener(event: string | symbol, fn: Listener): this {
    const l = this._events.get(event);
    if (l === undefined) this._events.set(event, [fn]);
    else l.push(fn);
    return this;
  }
  prependListener(event: string | symbol, fn: Listener): this {
    this._events.set(event, [fn, ...(this._events.get(event) ?? [])]);
    return this;
  }
  once(event: string | symbol, fn: Listener): this {
    const w = (...args: unknown[]): void => {
      this.removeListener(event, w);
      fn.apply(this, args);
    };
    (w as { listener?: Listener }).listener = fn;
    return this.addListener(event, w);
  }
  off(event: string | symbol, fn: Listener): this {
    return this.removeListener(event, fn);
  }
  removeListener(event: string | symbol, fn: Listener): this {
    const l = this._events.get(event);
    if (l === undefined) return this;
    for (let i = l.length - 1; i >= 0; i--) {
      const f = l[i] as Listener & { listener?: Listener };
      if (f === fn || f.listener === fn) {
        l.splice(i, 1);
        break;
      }
    }
    if (l.length === 0) this._events.delete(event);
    return this;
  }
  removeAllListeners(event?: string | symbol): this {
    if (event === undefined) this._events.clear();
    else this._events.delete(event);
    return this;
  }
  emit(event: string | symbol, ...args: unknown[]): boolean {
    const l = this._events.get(event);
    if (l === undefined) {
      if (event === 'error') throw args[0] instanceof Error ? args[0] : new Error(`Unhandled error. (${String(args[0])})`);
      return false;
    }
    for (const f of [...l]) f.apply(this, args);
    return true;
  }
  listeners(event: string | symbol): Listener[] {
    return (this._events.get(event) ?? []).map((f) => (f as { listener?: Listener }).listener ?? f);
  }
  listenerCount(event: string | symbol): number {
    return this._events.get(event)?.length ?? 0;
  }
}
