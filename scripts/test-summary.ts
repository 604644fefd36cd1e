// Prints the one closing line CI reads, `N passed, N failed[, N skipped]`, from vitest's JSON report.
// A report that is missing or unreadable is itself a failure: it prints `0 passed, 1 failed` and exits 1.
import { readFileSync } from "node:fs"

const path = process.argv[2] ?? "test-results/vitest.json"
try {
  const report = JSON.parse(readFileSync(path, "utf8")) as {
    numPassedTests: number
    numFailedTests: number
    numPendingTests: number
    numTodoTests: number
    numTotalTestSuites: number
    numFailedTestSuites: number
  }
  // A suite that failed to load (syntax error, failed import) has no tests to count: count it as a failure.
  const failed = report.numFailedTests + (report.numFailedTests === 0 ? report.numFailedTestSuites : 0)
  const skipped = report.numPendingTests + report.numTodoTests
  console.log(`${report.numPassedTests} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`)
} catch (error) {
  console.error(`cannot read the test report ${path}: ${String(error)}`)
  console.log("0 passed, 1 failed")
  process.exit(1)
}
