/**
 * turbocoap — browser / worker entry point: the WebAssembly backend only, with
 * the module inlined (no fs, no fetch).
 *
 * @packageDocumentation
 */
import { loadWasmBackend } from './backend/wasm';
import { setBackendProvider } from './state';

setBackendProvider(() => loadWasmBackend());

export * from './api';
