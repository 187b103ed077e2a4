// Simulated time. `scale` is simulated seconds per real second: work the sim models as taking time
// (copying bytes, a pod starting, a progress timeout) is shortened by it, so a 16 GiB migration can
// finish in milliseconds in tests and in realistic time in the demo. Timestamps written into objects
// stay wall-clock, so clients comparing them with their own clock see nothing odd.

export class SimClock {
  constructor(public scale = 1) {
    if (!(scale > 0)) throw new Error(`time scale must be > 0, got ${scale}`);
  }

  /** Real milliseconds that a simulated duration takes. */
  realMs(simMs: number): number {
    return simMs / this.scale;
  }

  /** Simulated milliseconds that pass during a real duration. */
  simMs(realMs: number): number {
    return realMs * this.scale;
  }

  sleep(simMs: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, this.realMs(simMs)));
  }

  setTimeout(fn: () => void, simMs: number): NodeJS.Timeout {
    return setTimeout(fn, this.realMs(simMs));
  }

  setInterval(fn: () => void, simMs: number): NodeJS.Timeout {
    return setInterval(fn, Math.max(1, this.realMs(simMs)));
  }

  /** Wall-clock timestamp as Kubernetes writes it (RFC 3339, seconds). */
  static timestamp(d = new Date()): string {
    return d.toISOString().replace(/\.\d+Z$/, "Z");
  }
}
