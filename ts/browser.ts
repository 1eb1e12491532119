/**
 * turbocoap — browser / worker entry point (dist/turbocoap.browser.mjs): the WebAssembly
 * backend only, with the module inlined (no fs, no fetch), and CoAP over WebSockets
 * (`coap+ws://`, `coaps+ws://`: RFC 8323 §4) through the browser's WebSocket: requests,
 * block-wise transfers (BERT included), Observe, and connections whose peer sends requests
 * down them (`connect(uri, { handler })`). No UDP, TCP or servers here: other schemes reject
 * with CoapSchemeError.
 *
 * @packageDocumentation
 */
// First: registers the browser's platform (modules below create the global Agent as they load).
import './transports-browser';
import { loadWasmBackend } from './backend/wasm';
import { setBackendProvider } from './state';

setBackendProvider(() => loadWasmBackend());

export * from './api';
export { request, Agent, globalAgent } from './client';
export type { RequestOptions, AgentOptions, CoapResponse, TransferProgress } from './client';
export { observe, Observation, CoapObserveError } from './observe';
export type { ObserveOptions } from './observe';
export { connect } from './connect';
export type { ConnectOptions } from './connect';
export { CoapConnection } from './connection';
export type { ConnectionTransport, ConnectionRequestInit } from './connection';
export { IncomingRequest, IncomingResponse, CoapRequestError } from './incoming';
export type { RemoteInfo } from './incoming';
export type { RequestHandler, ServerRouter, ResponseInit, NotifyInit } from './server';
export type { OptionInit, ContentFormatInit, BytesInit, PayloadInit } from './outgoing';
export type { ClientSecurityOptions, ClientPsk, PemInput, RawPublicKeyOptions, FutureSecurityOptions } from './security';
export type { BlockwiseOptions, ConnectionOptions, EndpointOptions } from './driver/driver';
export { CoapBlockwiseError } from './errors';
export type { BlockwiseFailure } from './errors';
