/**
 * A picture of a stage: nodes, networks (with subnets), point-to-point links, addresses and the impairments in
 * force, as Mermaid, Graphviz DOT, or a self-contained SVG (no script, no external reference) for reports. Every
 * name from the stage file is escaped for the format it goes into.
 */
import * as Impairment from "./Impairment.ts"
import type { Stage } from "./Stage.ts"

export interface Topology {
  readonly name: string
  readonly networks: ReadonlyArray<{ readonly name: string; readonly subnet?: string | undefined }>
  readonly nodes: ReadonlyArray<{ readonly name: string; readonly addresses: Readonly<Record<string, string>> }>
  readonly links: ReadonlyArray<{
    readonly a: { readonly node: string; readonly iface: string; readonly address?: string | undefined }
    readonly b: { readonly node: string; readonly iface: string; readonly address?: string | undefined }
  }>
  /** `NODE:IFACE` → settings in words. */
  readonly impairments: Readonly<Record<string, string>>
}

export const Format = ["mermaid", "dot", "svg"] as const
export type Format = (typeof Format)[number]

/**
 * The topology of a stage as defined, with the addresses it runs with (`addresses`: node → network → address,
 * e.g. from `status`) and the impairments in force.
 */
export const fromStage = (
  stage: Stage,
  running: { readonly addresses?: ReadonlyMap<string, Readonly<Record<string, string>>> } = {},
  impairments: Readonly<Record<string, Impairment.Settings>> = {}
): Topology => ({
  name: stage.name,
  networks: Object.entries(stage.networks ?? {}).map(([name, n]) => ({ name, subnet: n.subnet })),
  nodes: Object.entries(stage.nodes).map(([name, node]) => ({
    name,
    addresses: {
      ...Object.fromEntries((node.networks ?? []).map((a) => [a.network, a.address ?? ""])),
      ...running.addresses?.get(name)
    }
  })),
  links: (stage.links ?? []).map((l) => ({
    a: { node: l.a.node, iface: l.a.interface, address: l.a.address },
    b: { node: l.b.node, iface: l.b.interface, address: l.b.address }
  })),
  impairments: Object.fromEntries(
    Object.entries({
      ...Object.fromEntries((stage.impairments ?? []).map(({ target, ...s }) => [target, s])),
      ...impairments
    }).map(([target, s]) => [target, Impairment.describe(s)])
  )
})

const impairedNote = (t: Topology, node: string, iface: string) => {
  const note = t.impairments[`${node}:${iface}`]
  return note === undefined ? "" : ` [${note}]`
}

const endLabel = (t: Topology, e: Topology["links"][number]["a"]) =>
  `${e.node}:${e.iface}${e.address ? ` ${e.address}` : ""}${impairedNote(t, e.node, e.iface)}`

/** Mermaid flowchart; ids are generated, every label quoted with `"` written as `#quot;`. */
export const mermaid = (t: Topology): string => {
  const q = (s: string) => `"${s.replaceAll('"', "#quot;").replaceAll("\n", "<br/>")}"`
  const node = new Map(t.nodes.map((n, i) => [n.name, `n${i}`]))
  const net = new Map(t.networks.map((n, i) => [n.name, `w${i}`]))
  const lines = ["graph LR"]
  for (const n of t.networks) lines.push(`  ${net.get(n.name)}((${q(`${n.name}${n.subnet ? `\n${n.subnet}` : ""}`)}))`)
  for (const n of t.nodes) lines.push(`  ${node.get(n.name)}[${q(n.name)}]`)
  for (const n of t.nodes) {
    for (const [network, address] of Object.entries(n.addresses)) {
      const w = net.get(network)
      if (w === undefined) continue
      lines.push(`  ${node.get(n.name)} ---|${q(`${address || "dhcp"}${impairedNote(t, n.name, network)}`)}| ${w}`)
    }
  }
  for (const l of t.links) {
    lines.push(`  ${node.get(l.a.node)} ===|${q(`${endLabel(t, l.a)} ⟷ ${endLabel(t, l.b)}`)}| ${node.get(l.b.node)}`)
  }
  return `${lines.join("\n")}\n`
}

/** Graphviz DOT (undirected): networks as ellipses, nodes as boxes, links as bold edges. */
export const dot = (t: Topology): string => {
  const q = (s: string) => `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`
  const lines = [`graph ${q(t.name)} {`, "  rankdir=LR;", '  node [fontname="Helvetica"];']
  for (const n of t.networks)
    lines.push(`  ${q(`net:${n.name}`)} [shape=ellipse, label=${q(`${n.name}${n.subnet ? `\n${n.subnet}` : ""}`)}];`)
  for (const n of t.nodes) lines.push(`  ${q(`node:${n.name}`)} [shape=box, label=${q(n.name)}];`)
  for (const n of t.nodes) {
    for (const [network, address] of Object.entries(n.addresses)) {
      if (!t.networks.some((w) => w.name === network)) continue
      lines.push(
        `  ${q(`node:${n.name}`)} -- ${q(`net:${network}`)} [label=${q(`${address}${impairedNote(t, n.name, network)}`)}];`
      )
    }
  }
  for (const l of t.links) {
    lines.push(
      `  ${q(`node:${l.a.node}`)} -- ${q(`node:${l.b.node}`)} [style=bold, taillabel=${q(endLabel(t, l.a))}, headlabel=${q(endLabel(t, l.b))}];`
    )
  }
  return `${lines.concat("}").join("\n")}\n`
}

const xml = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;")

/**
 * A layered picture: networks in a row at the top, nodes in a row below them, attachments as lines between the
 * rows, links as arcs under the nodes. Good enough for a lab's handful of nodes; DOT is there for larger ones.
 */
export const svg = (t: Topology): string => {
  const gap = 170
  const columns = Math.max(t.networks.length, t.nodes.length, 2)
  const width = columns * gap + 40
  const height = 250 + t.links.length * 34
  // Each row centred: the i-th of `count` items.
  const at = (i: number, count: number) => 20 + gap / 2 + i * gap + ((columns - count) * gap) / 2
  const netX = new Map(t.networks.map((n, i) => [n.name, at(i, t.networks.length)]))
  const nodeX = new Map(t.nodes.map((n, i) => [n.name, at(i, t.nodes.length)]))
  const x = (v: number | undefined) => v ?? 0
  const parts: Array<string> = []
  for (const n of t.nodes) {
    for (const [network, address] of Object.entries(n.addresses)) {
      if (!netX.has(network)) continue
      const [x1, x2] = [x(nodeX.get(n.name)), x(netX.get(network))]
      parts.push(`<line x1="${x1}" y1="160" x2="${x2}" y2="70" stroke="#8c959f"/>`)
      const note = `${address}${impairedNote(t, n.name, network)}`
      // Near the node's end of the line: labels of one network's attachments do not pile up in the middle.
      parts.push(`<text x="${(3 * x1 + x2) / 4}" y="140" class="a">${xml(note)}</text>`)
    }
  }
  t.links.forEach((l, i) => {
    const [x1, x2] = [x(nodeX.get(l.a.node)), x(nodeX.get(l.b.node))]
    const y = 215 + i * 34
    parts.push(
      `<path d="M${x1} 184 C${x1} ${y + 10} ${x2} ${y + 10} ${x2} 184" fill="none" stroke="#0969da" stroke-width="3"/>`
    )
    parts.push(
      `<text x="${(x1 + x2) / 2}" y="${y + 14}" class="a">${xml(`${endLabel(t, l.a)} ⟷ ${endLabel(t, l.b)}`)}</text>`
    )
  })
  for (const n of t.networks) {
    const cx = x(netX.get(n.name))
    parts.push(`<ellipse cx="${cx}" cy="50" rx="70" ry="26" fill="#ddf4ff" stroke="#0969da"/>`)
    parts.push(
      `<text x="${cx}" y="47" class="n">${xml(n.name)}</text><text x="${cx}" y="62" class="a">${xml(n.subnet ?? "")}</text>`
    )
  }
  for (const n of t.nodes) {
    const cx = x(nodeX.get(n.name))
    parts.push(`<rect x="${cx - 60}" y="160" width="120" height="26" rx="5" fill="#fff" stroke="#1f2328"/>`)
    parts.push(`<text x="${cx}" y="178" class="n">${xml(n.name)}</text>`)
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>${xml(t.name)}</title>`,
    "<style>text{font:12px sans-serif;text-anchor:middle;fill:#1f2328}.n{font-weight:600}.a{font-size:11px;fill:#59636e}</style>",
    ...parts,
    "</svg>\n"
  ].join("\n")
}

export const render = (t: Topology, format: Format): string =>
  format === "mermaid" ? mermaid(t) : format === "dot" ? dot(t) : svg(t)
