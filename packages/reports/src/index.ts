// @testbed/reports: Run summaries folded from the event log, rendered as JSON, Markdown, JUnit XML, CTRF and HTML
