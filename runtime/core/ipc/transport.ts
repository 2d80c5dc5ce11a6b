/**
 * Transports: where the coordinator listens for its actors, and the address each actor is told
 * to connect back to. Both carry the same frames and the same handshake (handshake.ts).
 *
 * - `unix` (the default): a socket in a private 0700 folder; actors on this machine only.
 * - `tcp`: a TCP address, `port: 0` for a free one (the port bound is what actors are given);
 *   actors anywhere that can reach it. With `tls`, the connection is TLS and actors verify the
 *   coordinator's certificate against `caPath` (default: the certificate itself, for a
 *   self-signed one) and the name `serverName` (default: the advertised host).
 *
 * Plain TCP authenticates both ends by the per-spawn token (handshake.ts) but neither hides nor
 * protects the frames that follow: across a network you do not trust, use `tls`.
 *
 * @example
 * ```ts
 * const sup = new Supervisor({ faultTolerance, roles, transport: { kind: "tcp", host: "127.0.0.1", port: 0 } });
 * const tls = { kind: "tcp", host: "0.0.0.0", port: 7070, advertise: "node3.cluster",
 *               tls: { certPath: "coordinator.pem", keyPath: "coordinator.key" } } satisfies Transport;
 * parseHostPort("[::1]:7070"); // { host: "::1", port: 7070 }
 * ```
 */

/** The certificate files of a TLS listener. */
export interface TlsFiles {
  /** PEM certificate chain the coordinator presents. */
  certPath: string;
  /** PEM private key of that certificate. */
  keyPath: string;
  /** PEM certificates actors trust to verify the coordinator; default `certPath` (self-signed). */
  caPath?: string;
  /** The name actors require in the certificate; default the advertised host. */
  serverName?: string;
}

/** Where the coordinator listens for its actors. */
export type Transport =
  | { kind: "unix" }
  | {
    kind: "tcp";
    /** Address to bind: an IP address or host name of this machine; `0.0.0.0` or `::` for all. */
    host: string;
    /** 0 to 65535; 0 picks a free port. */
    port: number;
    /**
     * The host actors are told to connect to; default `host`, except that a wildcard
     * (`0.0.0.0`, `::`) is advertised as the loopback address of its family.
     */
    advertise?: string;
    tls?: TlsFiles;
  };

/** Where an actor connects back to: part of its spawn spec. */
export type ActorAddress =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number; tls?: { ca: string; serverName: string } };

/** A transport option or an actor address that cannot be used; the message names what and why. */
export class TransportError extends Error {
  override name = "TransportError";
}

export const DEFAULT_TRANSPORT: Transport = { kind: "unix" };

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[A-Za-z0-9_.-]+)?$/;
const WILDCARD_LOOPBACK: Record<string, string> = { "0.0.0.0": "127.0.0.1", "::": "::1" };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const shown = (v: unknown) => (v === undefined ? "nothing" : JSON.stringify(v) ?? String(v));

function checkKeys(value: Record<string, unknown>, where: string, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new TransportError(`${where} has an unknown field ${JSON.stringify(key)}; allowed: ${allowed.join(", ")}`);
  }
}

/** Checks an IP address or host name; IPv6 is written without brackets here. */
export function checkHost(value: unknown, where: string): string {
  if (typeof value !== "string" || !(HOST_NAME.test(value) || IPV6.test(value))) {
    throw new TransportError(`${where} must be an IP address or host name (IPv6 without brackets), got ${shown(value)}`);
  }
  return value;
}

export function checkPort(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 65535) {
    throw new TransportError(`${where} must be an integer from 0 to 65535 (0: any free port), got ${shown(value)}`);
  }
  return value;
}

function checkPath(value: unknown, where: string): string {
  if (typeof value !== "string" || value.length === 0) throw new TransportError(`${where} must be a file path, got ${shown(value)}`);
  return value;
}

function parseTls(value: unknown): TlsFiles {
  if (!isRecord(value)) throw new TransportError(`transport.tls must be an object { certPath, keyPath, caPath?, serverName? }, got ${shown(value)}`);
  checkKeys(value, "transport.tls", ["certPath", "keyPath", "caPath", "serverName"]);
  const tls: TlsFiles = { certPath: checkPath(value.certPath, "transport.tls.certPath"), keyPath: checkPath(value.keyPath, "transport.tls.keyPath") };
  if (value.caPath !== undefined) tls.caPath = checkPath(value.caPath, "transport.tls.caPath");
  if (value.serverName !== undefined) tls.serverName = checkHost(value.serverName, "transport.tls.serverName");
  return tls;
}

/**
 * Checks a transport option; throws TransportError naming the first field that is wrong and
 * what it may be. Undefined is the default, the Unix socket.
 */
export function parseTransport(value: unknown): Transport {
  if (value === undefined) return DEFAULT_TRANSPORT;
  if (!isRecord(value)) throw new TransportError(`transport must be { kind: "unix" } or { kind: "tcp", host, port, advertise?, tls? }, got ${shown(value)}`);
  if (value.kind === "unix") {
    checkKeys(value, "transport (unix)", ["kind"]);
    return { kind: "unix" };
  }
  if (value.kind !== "tcp") throw new TransportError(`transport.kind must be "unix" or "tcp", got ${shown(value.kind)}`);
  checkKeys(value, "transport (tcp)", ["kind", "host", "port", "advertise", "tls"]);
  const tcp: Transport = { kind: "tcp", host: checkHost(value.host, "transport.host"), port: checkPort(value.port, "transport.port") };
  if (value.advertise !== undefined) {
    tcp.advertise = checkHost(value.advertise, "transport.advertise");
    if (WILDCARD_LOOPBACK[tcp.advertise]) throw new TransportError(`transport.advertise must be an address actors can connect to, not the wildcard ${tcp.advertise}`);
  }
  if (value.tls !== undefined) tcp.tls = parseTls(value.tls);
  return tcp;
}

/** The host actors are told to connect to (see Transport's `advertise`). */
export function advertisedHost(t: Extract<Transport, { kind: "tcp" }>): string {
  return t.advertise ?? WILDCARD_LOOPBACK[t.host] ?? t.host;
}

/**
 * Reads `host:port` (IPv6 in brackets: `[::1]:7070`), as a configuration value would give it.
 * Throws TransportError naming what is wrong.
 */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(text);
  if (!m) throw new TransportError(`address ${JSON.stringify(text)} must be host:port, with an IPv6 address in brackets ([::1]:7070)`);
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined && !IPV6.test(host)) throw new TransportError(`address ${JSON.stringify(text)}: only an IPv6 address goes in brackets`);
  const where = `address ${JSON.stringify(text)}`;
  // Digits only: Number() would also take "0x1f", " 80" or "1e3".
  const port = /^\d{1,5}$/.test(m[3]!) ? Number(m[3]) : m[3];
  return { host: checkHost(host, `${where}: host`), port: checkPort(port, `${where}: port`) };
}

/** Checks the address in a spawn spec (the actor's side: nothing else tells it where to go). */
export function parseActorAddress(value: unknown): ActorAddress {
  const what = `the spawn spec's address`;
  if (!isRecord(value)) throw new TransportError(`${what} must be { kind: "unix", path } or { kind: "tcp", host, port, tls? }, got ${shown(value)}`);
  if (value.kind === "unix") return { kind: "unix", path: checkPath(value.path, `${what}.path`) };
  if (value.kind !== "tcp") throw new TransportError(`${what}.kind must be "unix" or "tcp", got ${shown(value.kind)}`);
  const address: ActorAddress = { kind: "tcp", host: checkHost(value.host, `${what}.host`), port: checkPort(value.port, `${what}.port`) };
  if (address.port === 0) throw new TransportError(`${what}.port is 0: an actor needs the port the coordinator bound`);
  if (value.tls !== undefined) {
    const tls = value.tls;
    if (!isRecord(tls) || typeof tls.ca !== "string" || !tls.ca.includes("-----BEGIN")) {
      throw new TransportError(`${what}.tls must be { ca: PEM text, serverName }, got ${shown(tls)}`);
    }
    address.tls = { ca: tls.ca, serverName: checkHost(tls.serverName, `${what}.tls.serverName`) };
  }
  return address;
}

/** One line for logs: `unix:/path`, `tcp://host:port` or `tls://host:port`. */
export function describeAddress(a: ActorAddress): string {
  if (a.kind === "unix") return `unix:${a.path}`;
  const host = a.host.includes(":") ? `[${a.host}]` : a.host;
  return `${a.tls ? "tls" : "tcp"}://${host}:${a.port}`;
}
