// An npm `coap` server with the same handler as server-turbocoap.mjs, for bench/udp.mjs.
//   node bench/lib/server-npm-coap.mjs PORT
import { createRequire } from 'node:module';
import { PAYLOAD } from './payload.mjs';

const require = createRequire(import.meta.url);
const coap = require('coap');

const port = Number(process.argv[2]);
const server = coap.createServer({ type: 'udp4' }, (req, res) => {
  res.setOption('Content-Format', 'text/plain');
  res.end(PAYLOAD);
});
server.listen(port, '127.0.0.1', (err) => {
  if (err) {
    process.stderr.write(`listen failed: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write('ready npm-coap\n');
});
const stop = () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
