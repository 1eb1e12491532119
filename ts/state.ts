/**
 * The process-wide backend, picked once at first use by the provider that the
 * entry point (index.ts for Node, browser.ts for browsers) registers.
 *
 * @internal
 */
import type { Backend } from './backend/types';

let provider: (() => Backend) | undefined;
let current: Backend | undefined;

/** Registers how the default backend is obtained (entry points only). */
export function setBackendProvider(fn: () => Backend): void {
  provider = fn;
}

/** The default backend, created on first call. */
export function defaultBackend(): Backend {
  if (current !== undefined) return current;
  if (provider === undefined) throw new Error('turbocoap: no backend provider registered');
  current = provider();
  return current;
}

/** Whether an entry point registered a provider (internal callers may run without one). */
export function hasBackendProvider(): boolean {
  return provider !== undefined || current !== undefined;
}
