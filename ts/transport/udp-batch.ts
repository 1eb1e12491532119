/**
 * The UDP drivers' RX records (ep_batch.h) read through the transport-neutral
 * {@link Received} interface: the one place in TypeScript that knows their layout.
 *
 * @internal
 */
import type { Received, RemoteInfo } from '../driver/driver';
import {
  EVF_CONFIRMABLE,
  EVF_LAST,
  RX_BODY_ID,
  RX_BODY_LEN,
  RX_CODE,
  RX_DATA,
  RX_FAMILY,
  RX_FLAGS,
  RX_ID,
  RX_IP,
  RX_LEN,
  RX_MID,
  RX_OPT_COUNT,
  RX_PAYLOAD_LEN,
  RX_PAYLOAD_OFF,
  RX_PORT,
  RX_SCOPE,
  RX_SRV_FLAGS,
  RX_TOKEN_LEN,
  RX_TOKEN_OFF,
  RX_TYPE,
  SRVF_BODY,
  SRVF_OBSERVE,
} from '../driver/abi';
import {
  RX_OPTS,
  formatRecordAddress,
} from './udp-records';

/** One delivered batch: record words, the byte area, and where the record offsets start in it. */
export class UdpBatch implements Received {
  readonly bytes: Uint8Array;
  /** The record words as bytes (address bytes), made on the first remote() only. */
  private w8: Uint8Array | undefined;

  constructor(
    protected readonly u32: Uint32Array,
    u8: Uint8Array,
    private readonly base: number,
  ) {
    this.bytes = u8;
  }

  id(r: number): number {
    return this.u32[r + RX_ID] as number;
  }
  code(r: number): number {
    return this.u32[r + RX_CODE] as number;
  }
  type(r: number): number {
    return this.u32[r + RX_TYPE] as number;
  }
  messageId(r: number): number {
    return this.u32[r + RX_MID] as number;
  }
  confirmable(r: number): boolean {
    return ((this.u32[r + RX_FLAGS] as number) & EVF_CONFIRMABLE) !== 0;
  }
  last(r: number): boolean {
    return ((this.u32[r + RX_FLAGS] as number) & EVF_LAST) !== 0;
  }
  tokenOffset(r: number): number {
    return this.base + (this.u32[r + RX_TOKEN_OFF] as number);
  }
  tokenLength(r: number): number {
    return this.u32[r + RX_TOKEN_LEN] as number;
  }
  optionCount(r: number): number {
    return this.u32[r + RX_OPT_COUNT] as number;
  }
  optionNumber(r: number, k: number): number {
    return this.u32[r + RX_OPTS + 3 * k] as number;
  }
  optionOffset(r: number, k: number): number {
    return this.base + (this.u32[r + RX_OPTS + 3 * k + 1] as number);
  }
  optionLength(r: number, k: number): number {
    return this.u32[r + RX_OPTS + 3 * k + 2] as number;
  }
  payloadOffset(r: number): number {
    return this.base + (this.u32[r + RX_PAYLOAD_OFF] as number);
  }
  payloadLength(r: number): number {
    return this.u32[r + RX_PAYLOAD_LEN] as number;
  }
  remote(r: number): RemoteInfo {
    const u32 = this.u32;
    const family = u32[r + RX_FAMILY] === 4 ? 4 : 6;
    const w8 = (this.w8 ??= new Uint8Array(u32.buffer, u32.byteOffset, u32.byteLength));
    const address = formatRecordAddress(family, w8, (r + RX_IP) * 4, u32[r + RX_SCOPE] as number);
    return { address, port: u32[r + RX_PORT] as number, family: family === 4 ? 'IPv4' : 'IPv6' };
  }
  observeAsked(r: number): boolean {
    return ((this.u32[r + RX_SRV_FLAGS] as number) & SRVF_OBSERVE) !== 0;
  }
  hasBody(r: number): boolean {
    return ((this.u32[r + RX_SRV_FLAGS] as number) & SRVF_BODY) !== 0;
  }
  bodyId(r: number): number {
    return this.u32[r + RX_BODY_ID] as number;
  }
  bodyLength(r: number): number {
    return this.u32[r + RX_BODY_LEN] as number;
  }
  message(r: number): Uint8Array {
    const off = this.base + (this.u32[r + RX_DATA] as number);
    return this.bytes.subarray(off, off + (this.u32[r + RX_LEN] as number));
  }
}
