/**
 * CoAP over UDP for Node: server, client and their types. Exported by the Node entry
 * point (index.ts) only: browsers have no UDP.
 */
export { createServer, CoapServer, ObservableResource } from './server';
export type { ResponseInit, NotifyInit, RequestHandler, ServerRouter, ServerOptions, ServerStats, ListenOptions } from './server';
export { request, Agent, globalAgent } from './client';
export type { RequestOptions, AgentOptions, CoapResponse } from './client';
export { IncomingRequest, IncomingResponse, CoapRequestError } from './incoming';
export type { RemoteInfo } from './incoming';
export type { OptionInit, ContentFormatInit, BytesInit, PayloadInit } from './outgoing';
export type { BlockwiseOptions, EndpointOptions, EndpointStats, SocketAddress } from './driver/driver';
/** `'native'` or `'wasm'`: which build of the C core runs an endpoint. */
export type { BackendKind as UdpBackendKind } from './driver/driver';
