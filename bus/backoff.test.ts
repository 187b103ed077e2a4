// The reconnect back-off (reconnectDelay) as a pure function: growth, jitter bounds, cap.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { reconnectDelay } from "./client.js";

const INITIAL = 250;
const MAX = 30_000;
const lowest = () => 0;
const highest = () => 1 - Number.EPSILON;

describe("reconnectDelay", () => {
  it("doubles with every attempt until the cap", () => {
    const top = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((a) => reconnectDelay(a, INITIAL, MAX, highest));
    expect(top).toEqual([250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    const bottom = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((a) => reconnectDelay(a, INITIAL, MAX, lowest));
    expect(bottom).toEqual([125, 250, 500, 1000, 2000, 4000, 8000, 15_000, 15_000]);
  });

  it("stays within 50–100 % of min(max, initial·2^attempt) for any random draw", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 600_000 }), (attempt, r, initial, max) => {
        const base = Math.min(max, initial * 2 ** attempt);
        const d = reconnectDelay(attempt, initial, max, () => r);
        expect(d).toBeGreaterThanOrEqual(Math.floor(base / 2));
        expect(d).toBeLessThanOrEqual(Math.ceil(base));
        expect(d).toBeLessThanOrEqual(max);
      }),
    );
  });

  it("spreads clients that retry together (jitter follows the random draw)", () => {
    const draws = [0, 0.25, 0.5, 0.75, 0.999].map((r) => reconnectDelay(5, INITIAL, MAX, () => r));
    expect(draws).toEqual([4000, 5000, 6000, 7000, 7996]);
  });

  it("never exceeds the cap, however many attempts (no overflow to Infinity)", () => {
    expect(reconnectDelay(10_000, INITIAL, MAX, highest)).toBe(MAX);
    expect(reconnectDelay(Number.MAX_SAFE_INTEGER, INITIAL, MAX, lowest)).toBe(MAX / 2);
  });
});
