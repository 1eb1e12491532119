// The frame shared by server-turbocoap-bw.mjs and server-npm-coap-bw.mjs (one server per child
// process): the command line `PORT [notify [N]]`, the count of Observe registrations, the notify
// loop and the stop on SIGTERM/SIGINT.

/** The UDP port to listen on (argv[2]). */
export const port = Number(process.argv[2]);
/** Whether to notify (argv[3] "notify"). */
export const notifying = process.argv[3] === 'notify';
const expected = Number(process.argv[4] ?? 0);
let registrations = 0;
let lastRegistration = 0;
let stopped = false;

/** Counts one Observe registration. */
export function registered() {
  registrations++;
  lastRegistration = Date.now();
}

/**
 * With "notify N": once N observers registered (or 1 s after the last registration, if fewer
 * come), runs tick() once per event-loop turn (setImmediate) until the stop.
 */
export function notifyLoop(tick) {
  if (!notifying) return;
  const loop = () => {
    if (stopped) return;
    tick();
    setImmediate(loop);
  };
  const wait = () => {
    if (stopped) return;
    if (registrations >= expected || (registrations > 0 && Date.now() - lastRegistration > 1000)) setImmediate(loop);
    else setTimeout(wait, 10);
  };
  wait();
}

/**
 * On SIGTERM/SIGINT: stops the notify loop, prints one JSON line { registrations, ...counters() }
 * on stderr, then exits once close() settles (after 1 s at the latest).
 */
export function stopOnSignal(counters, close) {
  const stop = () => {
    stopped = true;
    process.stderr.write(`${JSON.stringify({ registrations, ...counters() })}\n`);
    Promise.resolve(close()).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
