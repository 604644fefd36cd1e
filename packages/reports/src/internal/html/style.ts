// The style sheet every HTML page of this package shares (run report, comparison, history): inline, since a
// report is one self-contained file that must render with no network.
export const css = `
:root{color-scheme:light;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1180px;margin:0 auto;padding:24px}
header{display:flex;align-items:center;gap:16px;flex-wrap:wrap;margin-bottom:4px}
h1{font-size:26px;margin:0;word-break:break-word}
h2{font-size:18px;margin:28px 0 10px}
h3{font-size:15px;margin:16px 0 8px;word-break:break-word}
.sub{color:var(--muted);margin:0 0 18px}
.run{padding:3px 12px;border-radius:999px;font-weight:600;color:#fff}
.run.completed{background:#1a7f37}.run.failed{background:#cf222e}.run.finished_early{background:#bc4c00}.run.interrupted{background:#8250df}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(128px,1fr));gap:10px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 14px;border-top:4px solid var(--c)}
.card b{display:block;font-size:26px;line-height:1.2;white-space:nowrap}
.card span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.bar{display:flex;height:12px;border-radius:6px;overflow:hidden;margin:14px 0 4px;background:var(--line)}
.bar i{display:block;height:100%}
.panel{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px;overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{word-break:break-word}
.pill{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;white-space:nowrap}
table.matrix{width:auto}
table.matrix td,table.matrix th{text-align:center;border:1px solid var(--line)}
table.matrix th{text-transform:none;letter-spacing:0;font-size:13px;color:var(--fg);word-break:break-word}
table.matrix th.row{text-align:right}
table.matrix th.corner{color:var(--muted);font-weight:400;font-size:12px;white-space:nowrap}
table.matrix td.cell{font-weight:600;min-width:90px;padding:0}
table.matrix td.cell a,table.matrix td.cell span{display:block;padding:6px 10px;color:inherit;text-decoration:none}
table.matrix td.cell a:hover{text-decoration:underline}
table.matrix td.empty{color:var(--muted)}
.legend{display:flex;gap:14px;flex-wrap:wrap;color:var(--muted);font-size:12px;margin-top:8px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;vertical-align:-2px}
svg.timeline,svg.chart{display:block;font:12px system-ui,sans-serif;max-width:none}
svg .band{fill:#f6f8fa}
svg .grid{stroke:#d1d9e0;stroke-dasharray:2 3}
svg .tick{fill:#59636e;font-size:11px}
svg .test{fill:#1f2328;font-weight:600}
svg .svc{fill:#59636e;font-size:11px}
.filters{display:flex;gap:10px;flex-wrap:wrap;align-items:center;margin:0 0 10px}
.filters[hidden]{display:none}
.filters input[type=search]{flex:1 1 240px;padding:5px 9px;border:1px solid var(--line);border-radius:6px;font:inherit}
.filters label{white-space:nowrap;cursor:pointer}
.filters button{font:inherit;padding:3px 10px;border:1px solid var(--line);border-radius:6px;background:#fff;cursor:pointer}
#filter-count{color:var(--muted);font-size:12px;margin-left:auto}
details{border-bottom:1px solid var(--line);padding:8px 2px}
details:last-child{border-bottom:0}
details[hidden]{display:none}
summary{cursor:pointer;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
summary .name{font-weight:600;word-break:break-word}
summary .meta{color:var(--muted);margin-left:auto;font-size:12px}
details.tail{border:1px solid var(--line);border-radius:6px;padding:4px 8px;margin:6px 0}
details.tail summary{font-size:13px;gap:6px}
pre{background:#fff8f8;border:1px solid #ffcecb;border-radius:6px;padding:10px;white-space:pre-wrap;word-break:break-word;margin:8px 0}
pre.log{background:#f6f8fa;border-color:var(--line);font-size:12px;max-height:420px;overflow:auto}
ul{margin:6px 0;padding-left:22px}
a{color:#0969da}
.strip{display:inline-flex;gap:2px;flex-wrap:wrap}
.sq{display:inline-block;width:12px;height:12px;border-radius:2px;border:1px solid var(--line)}
footer{color:var(--muted);font-size:12px;margin-top:28px}
`
