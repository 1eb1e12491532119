/**
 * The platform of Node, registered when this module loads (index.ts imports it first): every transport of ./transports.ts, DNS
 * through node:dns, errno names and interfaces from node:os, the addon's client transfers,
 * node:crypto where there is no global WebCrypto (Node 18).
 *
 * @internal
 */
import { randomFillSync } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { constants as osConstants, networkInterfaces } from 'node:os';
import { loadNativeTransfers } from './backend/native';
import { loadWasmBackend } from './backend/wasm';
import { setPlatform, type Platform } from './platform';
import { checkEndpointOptions, driverFactory } from './transports';

export const nodePlatform: Platform = {
  driverFactory,
  schemeReason: (scheme) => `no transport for ${scheme}:// here`,
  checkEndpointOptions,
  lookup: (host) => lookup(host),
  clientTransfers: (kind) => (kind === 'native' ? loadNativeTransfers() : loadWasmBackend()),
  errno: osConstants.errno as Record<string, number>,
  networkInterfaces,
  randomFill: (b) => void randomFillSync(b),
};

setPlatform(nodePlatform);
