// The body of the block-wise benchmark (bench/blockwise.mjs): 1 MiB, byte i = i % 251, so
// `coap-bench --block2 SIZE --verify` can check every block it receives.
export const BODY_SIZE = 1048576;

/** A fresh Buffer of `size` bytes, byte i = i % 251. */
export function makeBody(size = BODY_SIZE) {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = i % 251;
  return b;
}
