// Prints "N passed, N failed" from vitest's JSON report(s); CI reads this line.
import { readFileSync, existsSync } from "node:fs";

let passed = 0;
let failed = 0;
const missing = [];
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) {
    missing.push(file);
    continue;
  }
  const report = JSON.parse(readFileSync(file, "utf8"));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  for (const suite of report.testResults ?? []) {
    if (suite.status === "failed" && (suite.assertionResults ?? []).length === 0) failed += 1; // suite failed to load
  }
}
for (const file of missing) {
  console.log(`missing report ${file}: counting one failure`);
  failed += 1;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
