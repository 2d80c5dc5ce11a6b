/**
 * Self-signed certificates for TLS tests and benchmarks, made with the `openssl` command. Where
 * there is none, `selfSignedCert` says why, and the caller skips with that reason printed.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

export interface CertFiles {
  certPath: string;
  keyPath: string;
}

/**
 * A P-256 certificate for 127.0.0.1 and localhost, valid one day, written as `<name>.pem` and
 * `<name>.key` in `dir`. It is an end-entity certificate (CA:FALSE): Deno's TLS (rustls) refuses
 * a CA certificate presented by a server, so a self-signed leaf is what both runtimes accept.
 */
export function selfSignedCert(dir: string, name = "coordinator"): CertFiles | { skip: string } {
  const files = { certPath: join(dir, `${name}.pem`), keyPath: join(dir, `${name}.key`) };
  const r = spawnSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", files.keyPath, "-out", files.certPath, "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-addext", "basicConstraints=critical,CA:FALSE",
  ], { encoding: "utf8" });
  if (r.error) return { skip: `no openssl command to make a test certificate (${r.error.message})` };
  if (r.status !== 0) return { skip: `openssl could not make a test certificate: ${r.stderr.trim().split("\n").pop()}` };
  return files;
}
