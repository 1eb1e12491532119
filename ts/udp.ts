/**
 * The network API for Node: server, client, connections and their types, over UDP and the
 * reliable transports (RFC 8323). Exported by the Node entry point (index.ts) only.
 */
export { createServer, CoapServer, ObservableResource } from './server';
export type { ResponseInit, NotifyInit, RequestHandler, ServerRouter, ServerOptions, ServerStats, ListenOptions, ListenTransport } from './server';
export { CoapConnection } from './connection';
export type { ConnectionTransport, ConnectionRequestInit } from './connection';
export { connect } from './connect';
export type { ConnectOptions } from './connect';
export type { PemInput, ServerPsk, ClientPsk, CertificateOptions, ServerSecurityOptions, ClientSecurityOptions, RawPublicKeyOptions, FutureSecurityOptions } from './security';
export { request, Agent, globalAgent } from './client';
export type { RequestOptions, AgentOptions, CoapResponse } from './client';
export { IncomingRequest, IncomingResponse, CoapRequestError } from './incoming';
export type { RemoteInfo } from './incoming';
export type { OptionInit, ContentFormatInit, BytesInit, PayloadInit } from './outgoing';
export type { BlockwiseOptions, ConnectionOptions, EndpointOptions, EndpointStats, SocketAddress } from './driver/driver';
/** `'native'` or `'wasm'`: which build of the C core runs an endpoint. */
export type { BackendKind as UdpBackendKind } from './driver/driver';
export { createProxy, CoapProxy } from './proxy';
export type { ProxyOptions, ProxyStats, ProxyTarget } from './proxy';
