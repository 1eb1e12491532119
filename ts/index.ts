/**
 * turbocoap — the fastest and most complete CoAP stack for JavaScript.
 *
 * Node entry point: the backend is the native addon if it loads, else
 * WebAssembly; set TURBOCOAP_BACKEND=native or =wasm to force one.
 *
 * @packageDocumentation
 */
// First: registers Node's platform (modules below create the global Agent as they load).
import './platform-node';
import { pickNodeBackend } from './backend/select';
import { setBackendProvider } from './state';

setBackendProvider(pickNodeBackend);

export * from './api';
export * from './udp';
export { observe, Observation, CoapObserveError } from './observe';
export type { ObserveOptions } from './observe';
export type { TransferProgress } from './client';
export { CoapBlockwiseError } from './errors';
export type { BlockwiseFailure } from './errors';
