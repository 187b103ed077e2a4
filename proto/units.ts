// Sizes as people read them, shared by the broker's and the agents' messages.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"] as const;

/** 1288490188 → "1.2 GiB"; exact below 1 KiB. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits).replace(/\.0$/, "")} ${UNITS[unit]}`;
}
