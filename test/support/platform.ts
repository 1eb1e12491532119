// vitest setupFiles: suites that import ts/client, ts/server, ... directly (not through the
// entry point ts/index.ts) get Node's platform, as index.ts registers it.
import '../../ts/platform-node';
