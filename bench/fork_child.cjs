// Baseline child for bench/ipc.ts: echoes every IPC message back (Node-style fork + process.send).
process.on("message", (m) => {
  if (m && m.t === "touch") process.send({ t: "touched", n: m.x.length ?? Object.keys(m.x).length });
  else process.send(m);
});
