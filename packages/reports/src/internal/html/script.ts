// The one script of the run report: filter the tests by status, search them by name, and reveal a test a matrix
// cell links to. Inline, allowed by its hash in the page's Content-Security-Policy (no other script can run), and
// written without data from the run, so the hash is a constant. Without it the page shows every test.
import { createHash } from "node:crypto"

export const filterScript = `(() => {
  const bar = document.getElementById("filters");
  if (bar === null) return;
  const search = document.getElementById("filter-name");
  const boxes = [...bar.querySelectorAll("input[type=checkbox]")];
  const rows = [...document.querySelectorAll("details.test")];
  const count = document.getElementById("filter-count");
  const failing = new Set(["failed", "timeout", "interrupted", "unschedulable"]);
  const apply = () => {
    const wanted = new Set(boxes.filter((b) => b.checked).map((b) => b.value));
    const text = search.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows) {
      const show = wanted.has(row.dataset.status) && (text === "" || row.dataset.name.includes(text));
      row.hidden = !show;
      if (show) shown++;
    }
    count.textContent = shown + " of " + rows.length + " tests shown";
  };
  const only = (keep) => {
    for (const box of boxes) box.checked = keep(box.value);
    apply();
  };
  search.addEventListener("input", apply);
  for (const box of boxes) box.addEventListener("change", apply);
  document.getElementById("filter-failures").addEventListener("click", () => only((s) => failing.has(s)));
  document.getElementById("filter-all").addEventListener("click", () => {
    search.value = "";
    only(() => true);
  });
  const reveal = () => {
    const id = decodeURIComponent(location.hash.slice(1));
    const target = id === "" ? null : document.getElementById(id);
    if (target === null || !target.matches("details.test")) return;
    if (target.hidden) {
      search.value = "";
      only(() => true);
    }
    target.open = true;
    target.scrollIntoView();
  };
  addEventListener("hashchange", reveal);
  bar.hidden = false;
  apply();
  reveal();
})();`

/** The Content-Security-Policy source that allows exactly this script. */
export const filterScriptSource = `'sha256-${createHash("sha256").update(filterScript).digest("base64")}'`
