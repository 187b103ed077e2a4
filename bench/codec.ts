// Bus codec: what checking every received message against its zod schema costs, against the
// floor of bare JSON.parse of the same bytes (and encode against JSON.stringify).
import { BUS_API_VERSION, decode, encode, type Heartbeat, type Inventory } from "../proto/bus/index.js";
import { inventory, vm } from "../broker/core/test-fixtures.js";
import { measureSync, type Bench } from "./lib.js";

function heartbeat(): Heartbeat {
  return {
    apiVersion: BUS_API_VERSION,
    kind: "Heartbeat",
    cluster: "east",
    epoch: 1,
    seq: 42,
    time: new Date("2026-11-21T12:00:00.000Z").toISOString(),
    health: { kubernetesApi: true, watches: true, tasks: 3 },
  };
}

function inventoryOf(vms: number): Inventory {
  return inventory("east", {
    vms: Array.from({ length: vms }, (_, i) =>
      vm(`ns-${i % 7}`, `vm-${i}`, {
        node: `n${1 + (i % 2)}`,
        volumes: [
          { name: "root", kind: "dataVolume", claimName: `vm-${i}-root`, sizeBytes: 20 * 2 ** 30, storageClass: "ceph-rbd" },
          { name: "data", kind: "persistentVolumeClaim", claimName: `vm-${i}-data`, sizeBytes: 50 * 2 ** 30, storageClass: "ceph-rbd" },
        ],
      }),
    ),
  });
}

export const codecBench: Bench = {
  name: "codec",
  what: "bus message decode (UTF-8 + JSON + zod schema + size/cluster checks) vs bare JSON.parse; encode vs JSON.stringify",
  // eslint-disable-next-line @typescript-eslint/require-await
  async run(opts, out) {
    const minMs = opts.quick ? 150 : 1000;
    const cases = [
      { label: "Heartbeat", kind: "heartbeat" as const, value: heartbeat() },
      { label: "Inventory, 20 VMs", kind: "inventory" as const, value: inventoryOf(20) },
      { label: "Inventory, 1000 VMs", kind: "inventory" as const, value: inventoryOf(1000) },
    ];
    const utf8 = new TextDecoder("utf-8", { fatal: true });
    for (const c of cases) {
      const encoded = encode(c.kind, c.value as never);
      if (!encoded.ok) throw new Error(`bench fixture ${c.label} is invalid: ${JSON.stringify(encoded)}`);
      const bytes = encoded.value;
      out.section(`${c.label} (${(bytes.byteLength / 1024).toFixed(1)} KiB)`);
      let sink = 0;
      const base = measureSync(() => {
        sink += (JSON.parse(utf8.decode(bytes)) as { seq: number }).seq;
      }, { minMs });
      const dec = measureSync(() => {
        const r = decode(c.kind, bytes, { cluster: "east" });
        if (!r.ok) throw new Error("decode failed");
        sink += r.value.seq;
      }, { minMs });
      out.baseline("JSON.parse(utf8 decode)", base, "msg/s");
      out.measured("decode() (JSON + zod + checks)", dec, base, "msg/s");
      const sBase = measureSync(() => {
        sink += JSON.stringify(c.value).length;
      }, { minMs });
      const enc = measureSync(() => {
        const r = encode(c.kind, c.value as never);
        if (!r.ok) throw new Error("encode failed");
        sink += r.value.byteLength;
      }, { minMs });
      out.baseline("JSON.stringify", sBase, "msg/s");
      out.measured("encode() (zod + JSON + UTF-8 + size check)", enc, sBase, "msg/s");
      if (sink === 0) out.note("(sink)");
    }
  },
};
