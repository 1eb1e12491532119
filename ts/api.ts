/**
 * The public API shared by the Node and browser entry points. The backend is
 * picked on first use by the provider that the entry point registered.
 */
import { Codec, DeframerImpl } from './codec';
import type { CoapMessage, CodecOptions, DeframerOptions } from './codec';
import { defaultBackend } from './state';

export type { CoapMessage, CoapOption, CodecOptions, DeframerOptions } from './codec';
export type { MessageType, Transport } from './codes';
export { codeToString, parseCode } from './codes';
export {
  CoapError,
  CoapParseError,
  CoapFrameError,
  CoapEncodeError,
  CoapTimeoutError,
  CoapResetError,
  CoapNetworkError,
  CoapConnectionError,
  CoapAbortError,
  CoapOptionError,
  CoapResponseError,
  CoapServerError,
  CoapSchemeError,
  CoapArgTypeError,
  CoapArgRangeError,
} from './errors';
export type { ResponseFailure, ServerFailure, ArgErrorCode } from './errors';
export {
  OptionNumber,
  SignalingOptionNumber,
  optionInfo,
  optionNumber,
  optionRegistry,
  encodeUint,
  decodeUint,
  isCritical,
  isUnsafe,
  isNoCacheKey,
} from './options';
export type { OptionInfo, OptionFormat } from './options';
export { ContentFormat, contentFormatName, contentFormatNumber } from './content-format';
export * from './methods';
export * from './uri';
export * from './linkformat';
export * from './router';

let codec: Codec | undefined;

function defaultCodec(): Codec {
  return (codec ??= new Codec(defaultBackend()));
}

/** The backend in use: `'native'` (Node addon) or `'wasm'`. Picking it loads it. */
export const backend: { readonly kind: 'native' | 'wasm' } = Object.freeze({
  get kind(): 'native' | 'wasm' {
    return defaultCodec().backend.kind;
  },
});

/**
 * Decodes one CoAP message.
 *
 * `token`, option values and `payload` are views of `bytes` (zero copy): copy
 * them if `bytes` will be reused. For TCP, `bytes` must hold exactly one framed
 * message (see {@link Deframer}); for WebSocket, one WebSocket message.
 *
 * @param bytes the message.
 * @param opts `transport`: `'udp'` (default), `'tcp'` or `'ws'`.
 * @throws CoapParseError if the bytes are not a valid message (`code` tells why).
 */
export function decode(bytes: Uint8Array, opts?: CodecOptions): CoapMessage {
  return (codec ?? defaultCodec()).decode(bytes, opts);
}

/**
 * Encodes one CoAP message. Options are sorted by number (stably: repeated
 * options keep their order); the message object is not modified.
 *
 * @param msg the message; `type` and `messageId` apply to UDP only.
 * @param opts `transport`: `'udp'` (default), `'tcp'` or `'ws'`.
 * @returns the encoded message in a new Uint8Array. Like Node's pooled
 *   Buffers, results of 65 to 4096 bytes may share one ArrayBuffer with other
 *   results: use `byteOffset`/`byteLength` if you access `.buffer`.
 * @throws CoapEncodeError (`code` `'INVALID'`) if a field is out of range.
 */
export function encode(msg: CoapMessage, opts?: CodecOptions): Uint8Array {
  return (codec ?? defaultCodec()).encode(msg, opts);
}

/**
 * Splits an RFC 8323 TCP/TLS byte stream into messages.
 *
 * ```ts
 * const d = new Deframer({ maxMessageSize: 8192 });
 * socket.on('data', (chunk) => {
 *   for (const frame of d.push(chunk)) handle(decode(frame, { transport: 'tcp' }));
 * });
 * ```
 */
export class Deframer extends DeframerImpl {
  /** @param opts `maxMessageSize` (default 1152, RFC 8323's default Max-Message-Size). */
  constructor(opts?: DeframerOptions) {
    super(defaultCodec(), opts);
  }
}
