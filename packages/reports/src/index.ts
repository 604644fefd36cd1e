// @testbed/reports: run summaries folded from the event log, rendered as JSON, Markdown, JUnit XML, CTRF and HTML
export * as Collector from "./Collector.ts"
export * as CtrfReport from "./CtrfReport.ts"
export * as HtmlReport from "./HtmlReport.ts"
export * as JsonReport from "./JsonReport.ts"
export * as JUnitReport from "./JUnitReport.ts"
export * as MarkdownReport from "./MarkdownReport.ts"
export * as ReportWriter from "./ReportWriter.ts"
export * as ExperimentSummary from "./ExperimentSummary.ts"
