// The example's functions in a module Worker: postMessage({ id, fn, args }) -> { id, result | error }.
import * as demo from './demo.mjs';

onmessage = async ({ data: { id, fn, args } }) => {
  try {
    postMessage({ id, result: await demo[fn](...args) });
  } catch (e) {
    postMessage({ id, error: `${e?.name}: ${e?.code ?? ''} ${e?.message ?? e}` });
  }
};
