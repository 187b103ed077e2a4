// Decoding of the Kubernetes protobuf request bodies kubectl's typed clients send for a few built-in
// kinds (`kubectl create namespace|configmap|secret`). Envelope: the magic "k8s\0", then a
// runtime.Unknown {typeMeta=1 {apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4}
// whose `raw` is the typed message. Field numbers are from k8s.io/api core/v1 and
// k8s.io/apimachinery meta/v1 generated.proto. Other kinds answer 415.
import { ApiError } from "./errors.js";

export const PROTOBUF = "application/vnd.kubernetes.protobuf";
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Field = { no: number; wire: number; value: bigint | Buffer };

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error("truncated varint");
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [result, pos];
    shift += 7n;
  }
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p1] = readVarint(buf, pos);
    pos = p1;
    const no = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 0) {
      const [v, p2] = readVarint(buf, pos);
      out.push({ no, wire, value: v });
      pos = p2;
    } else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      const end = p2 + Number(len);
      if (end > buf.length) throw new Error("truncated field");
      out.push({ no, wire, value: buf.subarray(p2, end) });
      pos = end;
    } else if (wire === 1) {
      out.push({ no, wire, value: buf.subarray(pos, pos + 8) });
      pos += 8;
    } else if (wire === 5) {
      out.push({ no, wire, value: buf.subarray(pos, pos + 4) });
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return out;
}

const bytes = (f: Field) => f.value as Buffer;
const str = (f: Field) => bytes(f).toString("utf8");

function map(fs: Field[], no: number, value: (b: Buffer) => string): Record<string, string> | undefined {
  const entries = fs.filter((f) => f.no === no);
  if (!entries.length) return undefined;
  const out: Record<string, string> = {};
  for (const e of entries) {
    const kv = fields(bytes(e));
    const k = kv.find((x) => x.no === 1);
    const v = kv.find((x) => x.no === 2);
    out[k ? str(k) : ""] = v ? value(bytes(v)) : "";
  }
  return out;
}

function objectMeta(buf: Buffer): Record<string, unknown> {
  const fs = fields(buf);
  const s = (no: number) => {
    const f = fs.find((x) => x.no === no);
    return f ? str(f) : undefined;
  };
  const meta: Record<string, unknown> = {};
  for (const [no, key] of [[1, "name"], [2, "generateName"], [3, "namespace"], [5, "uid"], [6, "resourceVersion"]] as const) {
    const v = s(no);
    if (v) meta[key] = v;
  }
  const labels = map(fs, 11, (b) => b.toString("utf8"));
  const annotations = map(fs, 12, (b) => b.toString("utf8"));
  if (labels) meta.labels = labels;
  if (annotations) meta.annotations = annotations;
  const owners = fs.filter((f) => f.no === 13).map((f) => {
    const o = fields(bytes(f));
    const g = (no: number) => {
      const x = o.find((y) => y.no === no);
      return x ? str(x) : undefined;
    };
    const b = (no: number) => {
      const x = o.find((y) => y.no === no);
      return x ? x.value !== 0n : undefined;
    };
    return { apiVersion: g(5), kind: g(1), name: g(3), uid: g(4), ...(b(6) !== undefined ? { controller: b(6) } : {}), ...(b(7) !== undefined ? { blockOwnerDeletion: b(7) } : {}) };
  });
  if (owners.length) meta.ownerReferences = owners;
  const finalizers = fs.filter((f) => f.no === 14).map(str);
  if (finalizers.length) meta.finalizers = finalizers;
  return meta;
}

/** Decodes a protobuf body into the JSON form of the object; 415 for kinds it does not know. */
export function decodeProtobuf(body: Buffer): Record<string, unknown> {
  const unsupported = (why: string) =>
    new ApiError(415, "UnsupportedMediaType", `the body of the request was in an unknown format (${why}) - accepted media types include: application/json, application/yaml`);
  if (!body.subarray(0, 4).equals(MAGIC)) throw unsupported("missing the k8s protobuf prefix");
  let apiVersion = "";
  let kind = "";
  let raw: Buffer | undefined;
  try {
    for (const f of fields(body.subarray(4))) {
      if (f.no === 1 && f.wire === 2) {
        for (const t of fields(bytes(f))) {
          if (t.no === 1) apiVersion = str(t);
          if (t.no === 2) kind = str(t);
        }
      } else if (f.no === 2 && f.wire === 2) raw = bytes(f);
    }
    if (!raw) throw new Error("no object in the envelope");
    const fs = fields(raw);
    const metaField = fs.find((f) => f.no === 1 && f.wire === 2);
    const metadata = metaField ? objectMeta(bytes(metaField)) : {};
    const base = { apiVersion, kind, metadata };
    const immutable = (no: number) => {
      const f = fs.find((x) => x.no === no && x.wire === 0);
      return f ? { immutable: f.value !== 0n } : {};
    };
    if (apiVersion === "v1" && kind === "ConfigMap") {
      const data = map(fs, 2, (b) => b.toString("utf8"));
      const binaryData = map(fs, 3, (b) => b.toString("base64"));
      return { ...base, ...(data ? { data } : {}), ...(binaryData ? { binaryData } : {}), ...immutable(4) };
    }
    if (apiVersion === "v1" && kind === "Secret") {
      const data = map(fs, 2, (b) => b.toString("base64"));
      const stringData = map(fs, 4, (b) => b.toString("utf8"));
      const type = fs.find((f) => f.no === 3);
      return { ...base, ...(data ? { data } : {}), ...(stringData ? { stringData } : {}), ...(type ? { type: str(type) } : {}), ...immutable(5) };
    }
    if (apiVersion === "v1" && kind === "Namespace") {
      const spec = fs.find((f) => f.no === 2 && f.wire === 2);
      const finalizers = spec ? fields(bytes(spec)).filter((f) => f.no === 1).map(str) : [];
      return { ...base, ...(finalizers.length ? { spec: { finalizers } } : {}) };
    }
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(400, "BadRequest", `cannot decode protobuf body: ${e instanceof Error ? e.message : String(e)}`);
  }
  throw unsupported(`protobuf is decoded only for v1 ConfigMap, Secret and Namespace, not ${apiVersion} ${kind}`);
}
