import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { type Browser, chromium } from "playwright-core"
import * as ReportWriter from "../src/ReportWriter.ts"
import { filterScript } from "../src/internal/html/script.ts"
import {
  chromiumPath,
  chromiumPresent,
  collecting,
  generatedAt,
  renderFixture,
  required,
  scenarios,
  testResults,
  writeLargeLog
} from "./support.ts"

// Offline by construction: no background traffic, no component updates, no first-run pages.
const args = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run"
]

const browser = Effect.acquireRelease(
  Effect.promise(() => chromium.launch({ executablePath: chromiumPath, args, headless: true })),
  (b: Browser) => Effect.promise(() => b.close())
)

interface Visit {
  readonly consoleErrors: ReadonlyArray<string>
  readonly requests: ReadonlyArray<string>
  readonly scripts: ReadonlyArray<string>
  readonly policy: string
  readonly title: string
  readonly h1: string
  readonly testNames: ReadonlyArray<string>
  readonly matrixCells: ReadonlyArray<{ readonly text: string; readonly background: string }>
  readonly timelineBars: number
  readonly buckets: number
}

type DomFacts = Omit<Visit, "consoleErrors" | "requests">

// Runs in the page: a string, so this package's TypeScript needs no DOM types.
const readDom = `(() => ({
  scripts: [...document.querySelectorAll("script")].map((e) => e.textContent ?? ""),
  policy: document.querySelector("meta[http-equiv=Content-Security-Policy]")?.getAttribute("content") ?? "",
  title: document.title,
  h1: document.querySelector("h1")?.textContent ?? "",
  testNames: [...document.querySelectorAll("details.test summary .name")].map((e) => e.textContent ?? ""),
  matrixCells: [...document.querySelectorAll("table.matrix td.cell")].map((e) => ({
    text: e.textContent ?? "",
    background: getComputedStyle(e).backgroundColor
  })),
  timelineBars: document.querySelectorAll("svg.timeline rect.attempt").length,
  buckets: document.querySelectorAll("svg.timeline rect.bucket").length
}))()`

/** Opens a report, records console errors and every request, reads the DOM, optionally takes a screenshot. */
/** A page open on a report, kept for the scope: console errors and every request recorded. */
const openPage = (b: Browser, file: string) =>
  Effect.gen(function* () {
    const page = yield* Effect.acquireRelease(
      Effect.promise(() => b.newPage({ viewport: { width: 1240, height: 900 } })),
      (p) => Effect.promise(() => p.close())
    )
    const errors: Array<string> = []
    const requests: Array<string> = []
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text())
    })
    page.on("pageerror", (e) => errors.push(e.message))
    page.on("request", (r) => requests.push(r.url()))
    yield* Effect.promise(() => page.goto(`file://${file}`, { waitUntil: "load" }))
    return { page, errors, requests }
  })

const visit = (b: Browser, file: string, screenshot?: string) =>
  Effect.gen(function* () {
    const { errors: consoleErrors, page, requests } = yield* openPage(b, file)
    const dom = (yield* Effect.promise(() => page.evaluate(readDom))) as DomFacts
    if (screenshot !== undefined) yield* Effect.promise(() => page.screenshot({ path: screenshot, fullPage: true }))
    return { consoleErrors, requests, ...dom } satisfies Visit
  }).pipe(Effect.scoped)

// Runs whenever Chromium is installed, and always under CI=true, where a missing Chromium fails the test.
describe.runIf(required(chromiumPresent))("HtmlReport in headless Chromium", () => {
  it.live(
    "every fixture report loads with no console error, no request but itself and only its own filter script",
    () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const b = yield* browser
        yield* fs.makeDirectory(testResults, { recursive: true })
        for (const scenario of scenarios) {
          const { dir } = yield* renderFixture(scenario)
          const file = `${dir}/report.html`
          const shot = `${testResults}report-${scenario}.png`
          const page = yield* visit(b, file, shot)
          assert.deepStrictEqual(page.consoleErrors, [], `${scenario}: console errors`)
          assert.deepStrictEqual(page.requests, [`file://${file}`], `${scenario}: network requests`)
          assert.deepStrictEqual(page.scripts, [filterScript])
          // Only that script may run: allowed by its hash, nothing else (no 'unsafe-inline', no source).
          assert.match(page.policy, /script-src 'sha256-[A-Za-z0-9+/=]+';/)
          assert.notInclude(page.policy, "unsafe-inline'; script")
          assert.isTrue((yield* fs.stat(shot)).size > 10_000, `${scenario}: screenshot written`)
        }
        // The report people look at first: the run with a matrix, retries, flaky and unsupported tests.
        yield* fs.copyFile(`${testResults}report-retries.png`, `${testResults}report.png`)
      }).pipe(Effect.provide(NodeServices.layer)),
    120_000
  )

  it.live(
    "shows hostile names as text, the matrix coloured by status and a bar per attempt",
    () =>
      Effect.gen(function* () {
        const b = yield* browser
        const failing = yield* renderFixture("failing")
        const page = yield* visit(b, `${failing.dir}/report.html`)
        assert.strictEqual(page.h1, "quic-interop")
        assert.include(page.testNames, 'handshake <b>&"quant"</b> | `x`')
        assert.deepStrictEqual(
          page.matrixCells.map((c) => c.text),
          ["passed", "failed", "timeout", "failed"]
        )
        assert.strictEqual(page.matrixCells[0]!.background, "rgb(26, 127, 55)")
        assert.strictEqual(page.matrixCells[1]!.background, "rgb(207, 34, 46)")
        assert.strictEqual(page.timelineBars, 4)
        const retries = yield* renderFixture("retries")
        const more = yield* visit(b, `${retries.dir}/report.html`)
        // 9 tests, two with 2 attempts, the skipped one finished without starting.
        assert.strictEqual(more.timelineBars, 11)
        assert.include(
          more.matrixCells.map((c) => c.text),
          "flaky"
        )
        assert.include(
          more.matrixCells.map((c) => c.text),
          "unsupported"
        )
      }).pipe(Effect.provide(NodeServices.layer)),
    120_000
  )
})

// Runs in the page: the tests listed and shown (not hidden by the filters), in page order.
const visibleTests = `[...document.querySelectorAll("details.test")].filter((d) => !d.hidden).map((d) => d.querySelector(".name").textContent)`

describe.runIf(required(chromiumPresent))("HtmlReport filters, matrices and log tails in headless Chromium", () => {
  it.live(
    "failures first; filter to failures and search by name; one grid per matrix, cells open their test",
    () =>
      Effect.gen(function* () {
        const b = yield* browser
        const { dir } = yield* renderFixture("triage")
        const { errors, page } = yield* openPage(b, `${dir}/report.html`)
        const shown = () => Effect.promise(() => page.evaluate(visibleTests) as Promise<ReadonlyArray<string>>)
        const all = yield* shown()
        assert.strictEqual(all.length, 8)
        assert.deepStrictEqual(all.slice(0, 4), [
          "step fails",
          "output mismatch",
          "server crash",
          "m2 [echo server, echo client]"
        ])
        assert.strictEqual(all[7], "m1 [echo server, exec client]")

        yield* Effect.promise(() => page.click("#filter-failures"))
        assert.deepStrictEqual(yield* shown(), all.slice(0, 4))
        assert.strictEqual(yield* Effect.promise(() => page.textContent("#filter-count")), "4 of 8 tests shown")

        yield* Effect.promise(() => page.click("#filter-all"))
        yield* Effect.promise(() => page.fill("#filter-name", "M1 ["))
        assert.deepStrictEqual(yield* shown(), ["m1 [echo server, echo client]", "m1 [echo server, exec client]"])
        // Unticking "passed" while searching: nothing left.
        yield* Effect.promise(() => page.uncheck('#filters input[value="passed"]'))
        assert.deepStrictEqual(yield* shown(), [])

        // One grid per matrix, axes named, each cell a link to its test.
        const grids = (yield* Effect.promise(() =>
          page.evaluate(
            `[...document.querySelectorAll("table.matrix")].map((t) => ({ name: t.getAttribute("aria-label"), corner: t.querySelector("th.corner").textContent, cells: [...t.querySelectorAll("td.cell a")].map((a) => a.textContent + " " + a.getAttribute("href")) }))`
          )
        )) as ReadonlyArray<{ name: string; corner: string; cells: ReadonlyArray<string> }>
        assert.deepStrictEqual(grids, [
          { name: "m1", corner: "server ↓ · client →", cells: ["passed #test-4", "passed #test-5"] },
          { name: "m2", corner: "server ↓ · client →", cells: ["failed #test-6"] }
        ])
        // Following a cell to a test the filters hide shows every test again and opens that one.
        yield* Effect.promise(() => page.click('table.matrix td.cell a[href="#test-5"]'))
        yield* Effect.promise(() => page.waitForFunction(`document.getElementById("test-5").open === true`))
        assert.strictEqual(
          yield* Effect.promise(() => page.evaluate(`document.getElementById("test-5").hidden`)),
          false
        )
        assert.strictEqual((yield* shown()).length, 8)
        assert.deepStrictEqual(errors, [])
      }).pipe(Effect.provide(NodeServices.layer)),
    120_000
  )

  it.live(
    "a failed step's log tails are inline (hostile bytes as text), with links to the full files in the run",
    () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const b = yield* browser
        const { dir } = yield* renderFixture("triage")
        const { errors, page } = yield* openPage(b, `${dir}/report.html`)
        const tails = (yield* Effect.promise(() =>
          page.evaluate(
            `[...document.querySelectorAll("#test-1 details.tail")].map((d) => ({ open: d.open, name: d.querySelector("summary b").textContent, href: d.querySelector("summary a").getAttribute("href"), text: d.querySelector("pre").textContent }))`
          )
        )) as ReadonlyArray<{ open: boolean; name: string; href: string; text: string }>
        assert.deepStrictEqual(
          tails.map((t) => [t.open, t.name, t.href]),
          [
            [true, "step probe stdout", "tests/step-fails/attempt-1/steps/probe.stdout.log"],
            [true, "step probe stderr", "tests/step-fails/attempt-1/steps/probe.stderr.log"],
            [false, "server stdout", "tests/step-fails/attempt-1/server/stdout.log"]
          ]
        )
        assert.include(tails[1]!.text, "handshake failed ]]> </system-err> <script>alert(1)</script> & \\x01")
        // Every link of the page is a file of the run that exists.
        const hrefs = (yield* Effect.promise(() =>
          page.evaluate(`[...document.querySelectorAll("a[href]")].map((a) => a.getAttribute("href"))`)
        )) as ReadonlyArray<string>
        for (const href of hrefs.filter((h) => !h.startsWith("#"))) {
          assert.isTrue(yield* fs.exists(`${dir}/${decodeURI(href)}`), href)
        }
        // The timeline shows the long name whole, over as many lines as it needs, each inside the label column.
        const labels = (yield* Effect.promise(() =>
          page.evaluate(
            `[...document.querySelectorAll("svg.timeline text.test")].map((t) => [...t.querySelectorAll("tspan")].map((s) => s.textContent).join(" "))`
          )
        )) as ReadonlyArray<string>
        const overflow = yield* Effect.promise(() =>
          page.evaluate(`[...document.querySelectorAll("svg.timeline text")].filter((t) => t.getBBox().x < 0).length`)
        )
        assert.strictEqual(overflow, 0)
        assert.include(
          labels,
          "flaky handshake with a rather long name that the timeline used to cut off after thirty-four characters"
        )
        assert.deepStrictEqual(errors, [])
      }).pipe(Effect.provide(NodeServices.layer)),
    120_000
  )
})

describe.runIf(required(chromiumPresent))("HtmlReport of a large run in headless Chromium", () => {
  it.live(
    "3,000 tests: an aggregated timeline, the tests that did not pass, no console error",
    () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-reports-large-" })
        writeLargeLog(`${dir}/${ReportWriter.eventLogName}`, 3000)
        yield* ReportWriter.renderDirectory(dir, { formats: ["html"], generatedAt })
        const b = yield* browser
        const page = yield* visit(b, `${dir}/report.html`)
        assert.deepStrictEqual(page.consoleErrors, [])
        assert.strictEqual(page.timelineBars, 0)
        assert.isAbove(page.buckets, 10)
        // Every 17th test failed: 177 of 3,000.
        assert.strictEqual(page.testNames.length, 177)
      }).pipe(Effect.provide(NodeServices.layer)),
    120_000
  )
})

describe("HtmlReport and MarkdownReport links", () => {
  it("link only to paths inside the run directory", () => {
    const { add, summary: summarize } = collecting()
    add("experiment.started", "run", { name: "run", settings: {} })
    add("test.started", "t", { name: "t", attempt: 1 })
    const escaping = ["../../etc/passwd", "/etc/shadow", "//evil.example/x", "logs/../../../up", "a\\..\\..\\win"]
    for (const path of [...escaping, "logs/t/server.log", "logs/./t/../t/client.log"]) {
      add("test.artifact", "t", { name: path, kind: "log", path })
    }
    add("test.finished", "t", {
      name: "t",
      attempt: 1,
      status: "failed",
      durationMs: 1,
      logsPath: "../outside-logs"
    })
    add("experiment.finished", "run", { status: "failed" })
    const summary = summarize()
    const html = ReportWriter.render(summary, "html")
    const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1])
    assert.deepStrictEqual(hrefs, ["logs/t/server.log", "logs/./t/../t/client.log"])
    assert.include(html, "../../etc/passwd <i>(outside the run directory, not linked)</i>")
    const md = ReportWriter.render(summary, "md")
    const targets = [...md.matchAll(/\]\(([^)]*)\)/g)].map((m) => m[1])
    assert.deepStrictEqual(targets, ["logs/t/server.log", "logs/./t/../t/client.log"])
    assert.include(md, "(outside the run directory, not linked)")
  })

  it("a message full of backtick runs renders (no spread of its runs onto the stack)", () => {
    const { add, summary } = collecting()
    add("test.started", "t", { name: "t", attempt: 1 })
    add("test.finished", "t", {
      name: "t",
      attempt: 1,
      status: "failed",
      durationMs: 1,
      errorMessage: "`a".repeat(300_000)
    })
    const md = ReportWriter.render(summary(), "md")
    assert.include(md, "```text\n`a`a")
  })
})
