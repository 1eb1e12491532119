/**
 * One UDP endpoint as the server and client code see it: a driver (native or WASM) and the
 * dispatch of delivered batches to a listener, over the shared writer of TX records
 * (./tx-writer.ts: RESPOND, REQUEST, NOTIFY, ... with the once-per-microtask flush).
 *
 * @internal
 */
import { randomBytes } from 'node:crypto';
import type { BindOptions, Driver, DriverListener, EndpointOptions, EndpointStats, SocketAddress } from '../driver/driver';
import { UdpBatch } from './udp-batch';
import {
  EV_FAILED,
  EV_REQUEST,
  EV_RESPONSE,
  RX_ID,
  RX_KIND,
  RX_OPT_COUNT,
  RX_STATUS,
  RX_WORDS,
  SEED_BYTES,
} from '../driver/abi';
import {
  endpointConfig,
  zoneScope,
  type UdpDriver,
  type UdpDriverFactory,
} from './udp-records';
import { udpFactory, type UdpBackendKind } from './udp-select';
import { TxWriter } from './tx-writer';

export class Endpoint extends TxWriter implements Driver {
  readonly driver: UdpDriver;
  readonly kind: UdpBackendKind;

  constructor(
    family: 4 | 6,
    kind: UdpBackendKind | undefined,
    opts: EndpointOptions | undefined,
    listener: DriverListener,
    role: 'server' | 'client' = 'server',
    /** A driver of another kind over the same records (DTLS: ts/transport/dtls.ts). */
    driverFactory?: { kind: UdpBackendKind; create: UdpDriverFactory },
  ) {
    super(listener);
    const f = driverFactory ?? udpFactory(kind);
    this.kind = f.kind;
    this.driver = f.create(family, endpointConfig(opts, role), new Uint8Array(randomBytes(SEED_BYTES)), this.onBatch);
    this.attach(this.driver);
  }

  private readonly onBatch = (u32: Uint32Array, u8: Uint8Array, count: number, base: number): void => {
    const batch = new UdpBatch(u32, u8, base);
    const l = this.listener;
    let r = 0;
    for (let i = 0; i < count; i++) {
      const kind = u32[r + RX_KIND];
      if (kind === EV_REQUEST) l.onRequest(batch, r);
      else if (kind === EV_RESPONSE) l.onResponse(batch, r);
      else if (kind === EV_FAILED) l.onFailed(u32[r + RX_ID] as number, (u32[r + RX_STATUS] as number) | 0);
      r += RX_WORDS + 3 * (u32[r + RX_OPT_COUNT] as number);
    }
  };

  get backend(): UdpBackendKind {
    return this.kind;
  }

  zoneScope(zone: string): number {
    return zoneScope(zone);
  }

  bind(host: string, port: number, options: BindOptions): Promise<void> {
    return this.driver.bind(host, port, (options.ipv6Only === true ? 1 : 0) | (options.reuseAddr === true ? 2 : 0));
  }

  address(): SocketAddress {
    return this.driver.address();
  }

  setRef(on: boolean): void {
    this.driver.setRef(on);
  }

  stats(): EndpointStats {
    return this.driver.stats();
  }

  /** Flushes, then closes the socket. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.flush();
      this.closed = true;
    }
    await this.driver.close();
  }
}
