/** Helpers shared by the runtime implementations. */

/** A write queue over an async writer: keeps order, never drops, reports queued bytes. */
export class WriteQueue {
  private queue: Uint8Array[] = [];
  private flushing = false;
  pendingBytes = 0;

  constructor(
    private readonly writeSome: (data: Uint8Array) => number | Promise<number>,
    private readonly onError: (e: Error) => void,
  ) {}

  push(data: Uint8Array): void {
    if (data.byteLength === 0) return;
    this.queue.push(data);
    this.pendingBytes += data.byteLength;
    if (!this.flushing) void this.flush();
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        const n = await this.writeSome(head);
        this.pendingBytes -= n;
        if (n >= head.byteLength) this.queue.shift();
        else this.queue[0] = head.subarray(n);
      }
    } catch (e) {
      this.queue = [];
      this.pendingBytes = 0;
      this.onError(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.flushing = false;
    }
  }
}

/** `host:port`, with an IPv6 address in brackets (`[::1]:9000`). */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
