// Framing of the simulated synchronization protocol. KubeVirt speaks gRPC
// (kubevirt.synchronization.Synchronize: SyncSourceMigrationStatus, SyncTargetMigrationStatus,
// CancelMigration); the sim sends the same three calls as length-prefixed JSON frames over the
// same kind of mutual-TLS connection, plus migration data frames (see README: in KubeVirt the data
// flows virt-handler to virt-handler; the sim tunnels it through the sync connection).
import type { TLSSocket } from "node:tls";

export const enum FrameType {
  Hello = 1,
  Request = 2,
  Response = 3,
  Data = 4,
  Ack = 5,
  Fin = 6,
}

export interface DataHeader {
  mid: string;
  seq: number;
  sim: number;
  kind: "disk" | "memory";
}

export function encode(type: FrameType, payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length + 1, 0);
  head.writeUInt8(type, 4);
  return Buffer.concat([head, payload]);
}

export const json = (type: FrameType, v: unknown): Buffer => encode(type, Buffer.from(JSON.stringify(v)));

export function encodeData(h: DataHeader, realBytes: number): Buffer {
  const header = Buffer.from(JSON.stringify(h));
  const b = Buffer.alloc(2 + header.length + realBytes);
  b.writeUInt16BE(header.length, 0);
  header.copy(b, 2);
  // the payload stands for guest pages/blocks; its content does not matter
  b.fill(0x5a, 2 + header.length);
  return encode(FrameType.Data, b);
}

export function decodeData(payload: Buffer): { header: DataHeader; realBytes: number } {
  const n = payload.readUInt16BE(0);
  const header = JSON.parse(payload.subarray(2, 2 + n).toString()) as DataHeader;
  return { header, realBytes: payload.length - 2 - n };
}

/**
 * A framed connection over a TLS socket that can be stalled (reads paused, writes held back) and
 * resumed, which is how the sim's stallSync fault freezes synchronization traffic.
 */
export class FramedConn {
  private buf: Buffer = Buffer.alloc(0);
  private held: Buffer[] = [];
  private stalled = false;
  closed = false;

  constructor(
    readonly socket: TLSSocket,
    private readonly onFrame: (type: FrameType, payload: Buffer) => void,
    private readonly onClose: (err?: Error) => void,
  ) {
    socket.on("data", (d: Buffer) => this.onData(d));
    socket.on("error", (e) => this.close(e));
    socket.on("close", () => this.close());
  }

  setStalled(s: boolean): void {
    this.stalled = s;
    if (s) this.socket.pause();
    else {
      this.socket.resume();
      const held = this.held;
      this.held = [];
      for (const f of held) this.socket.write(f);
    }
  }

  write(frame: Buffer): void {
    if (this.closed) return;
    if (this.stalled) this.held.push(frame);
    else this.socket.write(frame);
  }

  close(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onClose(err);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(0);
      if (this.buf.length < 4 + len) break;
      const type = this.buf.readUInt8(4) as FrameType;
      const payload = this.buf.subarray(5, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      try {
        this.onFrame(type, payload);
      } catch (e) {
        this.close(e instanceof Error ? e : new Error(String(e)));
        return;
      }
    }
  }
}
