// Runs examples/browser/server.mjs's startExample in its own Node process (as a user runs it,
// with 'turbocoap' resolved by Node to dist/), for test/browser/ws.test.ts, over IPC:
//   parent -> { cert, key, tick }: start; -> 'observers': reply { observers }; -> 'close'
//   child  -> { ready: { http, ws, wss } }, { whoami: answer }, { observers: n }, { closed: true }
import { startExample } from '../../examples/browser/server.mjs';

let ex;
process.on('message', async (m) => {
  if (m === 'observers') process.send({ observers: ex.server.stats()?.observers ?? 0 });
  else if (m === 'close') {
    await ex?.close();
    process.send({ closed: true }, () => process.exit(0));
  } else {
    ex = await startExample({ port: 0, wssPort: 0, tick: m.tick, cert: m.cert, key: m.key, onWhoami: (answer) => process.send({ whoami: answer }) });
    process.send({ ready: { http: ex.http, ws: ex.ws, wss: ex.wss } });
  }
});
process.on('disconnect', () => process.exit(0));
