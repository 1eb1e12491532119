/**
 * CoAP over UDP for Node: server, client and their types. Exported by the Node entry
 * point (index.ts) only: browsers have no UDP.
 */
export { createServer, CoapServer, ObservableResource } from './server';
export type { ResponseInit, NotifyInit, RequestHandler, ServerRouter, ServerOptions, ListenOptions } from './server';
export { request, Agent, globalAgent } from './client';
export type { RequestOptions, AgentOptions, CoapResponse } from './client';
export { IncomingRequest, IncomingResponse } from './incoming';
export type { RemoteInfo } from './incoming';
export type { OptionInit, ContentFormatInit } from './outgoing';
export type { EndpointOptions, EndpointStats, SocketAddress } from './transport/udp-records';
export type { UdpBackendKind } from './transport/udp-select';
