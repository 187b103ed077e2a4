import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClusterName, DNS1123_LABEL, isDns1123Label, isDns1123Subdomain, LabelKey, LabelValue, NetworkName, ObjectName } from "./names.js";

const messageOf = (r: { success: boolean; error?: { issues: { message: string }[] } }) => r.error?.issues[0]?.message;

describe("names", () => {
  it.each(["a", "east-1", "0", "a".repeat(63)])("accepts the DNS-1123 label %s", (name) => {
    expect(ClusterName.safeParse(name).success).toBe(true);
  });

  it.each(["", "East", "-a", "a-", "a_b", "a.b", "a".repeat(64)])("rejects %j as a cluster name, naming the rule", (name) => {
    expect(messageOf(ClusterName.safeParse(name))).toBe(
      `cluster name ${JSON.stringify(name)} must be a DNS-1123 label: lowercase alphanumerics and '-', start and end alphanumeric, at most 63 characters`,
    );
  });

  it("agrees with the predicate on arbitrary strings", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(DNS1123_LABEL)), (s) => {
        expect(ClusterName.safeParse(s).success).toBe(isDns1123Label(s));
      }),
    );
  });

  it("takes dotted object names up to 253 characters", () => {
    expect(ObjectName.safeParse("vm.example-1").success).toBe(true);
    expect(isDns1123Subdomain(`${"a".repeat(63)}.`.repeat(4).slice(0, 253))).toBe(true);
    expect(messageOf(ObjectName.safeParse("a".repeat(254)))).toMatch(/must be a DNS-1123 subdomain/);
    expect(ObjectName.safeParse("a..b").success).toBe(false);
  });

  it.each([
    ["pod", true],
    ["multus/vlan-10", true],
    ["vlan.10", true],
    ["Multus/vlan", false],
    ["a/b/c", false],
  ])("network %s valid: %s", (name, ok) => {
    expect(NetworkName.safeParse(name).success).toBe(ok);
  });

  it("bounds a network name: namespace at most 63 characters, name at most 253", () => {
    const ns = "n".repeat(63);
    const name = `${"a".repeat(63)}.`.repeat(4).slice(0, 253);
    expect(NetworkName.safeParse(`${ns}/${name}`).success).toBe(true);
    expect(NetworkName.safeParse(name).success).toBe(true);
    for (const bad of [`n${ns}/x`, `${ns}/${name}b`, `${name}b`, "a".repeat(5000)]) {
      const r = NetworkName.safeParse(bad);
      expect(r.success, `${bad.length} characters`).toBe(false);
      expect(r.error?.issues).toHaveLength(1);
      expect(messageOf(r)).toMatch(/namespace a DNS-1123 label of at most 63 characters, name a DNS-1123 subdomain of at most 253/);
    }
  });

  it.each([
    ["app", true],
    ["app.kubernetes.io/name", true],
    ["ferry.dev/migration", true],
    ["Under_score.ok", true],
    ["/name", false],
    ["-bad", false],
    ["a".repeat(64), false],
  ])("label key %s valid: %s", (key, ok) => {
    expect(LabelKey.safeParse(key).success).toBe(ok);
  });

  it("label values may be empty but not too long", () => {
    expect(LabelValue.safeParse("").success).toBe(true);
    expect(messageOf(LabelValue.safeParse("x".repeat(64)))).toMatch(/at most 63 characters/);
  });
});
