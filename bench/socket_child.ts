// Baseline child for bench/ipc.ts: raw bytes over the runtime adapter's Unix socket, no framing.
// Reads argv[2] (socket path) and argv[3] (bytes per message); answers one byte per message.
import { runtime } from "../runtime/core/adapter/index.ts";

const [path, size] = process.argv.slice(2);
const perMessage = Number(size);
let got = 0;
const conn = await runtime.connectUnix(path!, {
  data(bytes) {
    got += bytes.byteLength;
    while (got >= perMessage) {
      got -= perMessage;
      conn.write(new Uint8Array(1));
    }
  },
  close: () => process.exit(0),
});
