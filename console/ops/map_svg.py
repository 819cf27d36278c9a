"""The pipeline map drawn: a layered left-to-right layout of the graph of
console/ops/topology.py, computed here and written as one inline SVG (no script, no
CDN). Called by the map's views in console/ops/pages.py.

Layout: each node's column is the longest path to it from a node nothing feeds (so the
columns read sources -> topics -> consumers -> tables and output topics -> the next
consumers -> dead letters and quarantine); within a column, nodes follow the middle of
what feeds them and stack without overlapping, a pipeline's nodes kept together. Edges
are curves from a node's right side to the next node's left side, drawn under the nodes;
the edge into a consumer carries that topic's messages/s and the consumer's lag on it.

Each node is a link to its existing page, carries `data-node`, `data-kind`, `data-state`
and `data-red` (the browser test reads them), and a tooltip saying why it is red.
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .topology import Graph, Node

NODE_W = 176
COL_GAP = 96
LINE_H = 13
PAD = 6
V_GAP = 12
TOP = 28  # room for the column headings
MAX_MEMBERS = 6  # members listed on a consumer's node; the rest as "+N more"
CHARS = 29  # characters that fit on a node's line

_FILL = {"source": "#eef6fb", "topic": "#fff8e1", "consumer": "#e6f4ea", "task": "#f3e8ff", "table": "#f6f8fa",
         "quarantine": "#ffffff"}
_KIND_ORDER = {"source": 0, "task": 1, "topic": 2, "consumer": 3, "table": 4, "quarantine": 5}
_HEADINGS = {"source": "sources", "task": "tasks", "topic": "topics", "consumer": "consumers", "table": "tables",
             "quarantine": "quarantine"}
_EDGE = {"data": ("#57606a", ""), "write": ("#8c959f", ""), "queue": ("#8250df", "2 3"),
         "dead_letter": ("#bf8700", "5 3")}
RED = "#cf222e"


def columns(graph: Graph) -> dict[str, int]:
    """Each node's column: the longest path to it (edges that would close a cycle are ignored)."""
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        if e.source in graph.nodes and e.target in graph.nodes and e.source != e.target:
            preds[e.target].append(e.source)
    column: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(node: str) -> int:
        if node in column:
            return column[node]
        visiting.add(node)
        column[node] = 0
        column[node] = max((depth(p) + 1 for p in preds[node] if p not in visiting), default=0)
        visiting.discard(node)
        return column[node]

    for node in graph.nodes:
        depth(node)
    return column


def _height(node: Node) -> int:
    lines = 2 + sum(1 for line in node.lines if line) + min(len(node.members), MAX_MEMBERS)
    lines += 1 if len(node.members) > MAX_MEMBERS else 0
    return PAD * 2 + LINE_H * lines


def layout(graph: Graph) -> tuple[dict[str, tuple[float, float, float]], int, int, dict[int, str]]:
    """(x, y, height) per node, the drawing's width and height, and a heading per column."""
    column = columns(graph)
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        if e.target in preds and e.source in graph.nodes and column[e.source] < column[e.target]:
            preds[e.target].append(e.source)
    by_column: dict[int, list[Node]] = {}
    for node in graph.nodes.values():
        by_column.setdefault(column[node.id], []).append(node)
    placed: dict[str, tuple[float, float, float]] = {}
    bottom = TOP
    headings: dict[int, str] = {}
    for col in sorted(by_column):
        x = col * (NODE_W + COL_GAP) + 10

        def wanted(node: Node) -> float:
            centers = [placed[p][1] + placed[p][2] / 2 for p in preds[node.id] if p in placed]
            return sum(centers) / len(centers) if centers else float("inf")

        nodes = sorted(by_column[col], key=lambda n: (wanted(n), n.order, _KIND_ORDER[n.kind], n.label))
        cursor = TOP
        for node in nodes:
            height = _height(node)
            center = wanted(node)
            y = cursor if center == float("inf") else max(cursor, center - height / 2)
            placed[node.id] = (x, y, height)
            cursor = y + height + V_GAP
        bottom = max(bottom, cursor)
        kinds = sorted({n.kind for n in nodes}, key=_KIND_ORDER.get)
        headings[col] = " · ".join(_HEADINGS[k] for k in kinds)
    width = (max(by_column, default=0) + 1) * (NODE_W + COL_GAP) - COL_GAP + 20
    return placed, width, int(bottom + 10), headings


def _cut(text: str, chars: int = CHARS) -> str:
    return text if len(text) <= chars else text[:chars - 1] + "…"


def _node_svg(node: Node, x: float, y: float, height: float) -> str:
    stroke, width = (RED, 2.5) if node.red else ("#8c959f", 1)
    fill = "#ffebe9" if node.red else _FILL[node.kind]
    tip = "\n".join([node.label, node.detail, *node.lines, *(about for _text, _red, about in node.members), *node.why])
    parts = [
        f'<a href="{escape(node.link)}" class="map-link">' if node.link else "",
        f'<g class="map-node" data-node="{escape(node.id)}" data-kind="{node.kind}" '
        f'data-state="{escape(node.state)}" data-red="{int(node.red)}">',
        f'<title>{escape(tip.strip())}</title>',
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{height:.0f}" rx="5" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="{width}"/>',
        f'<text x="{x + PAD:.1f}" y="{y + PAD + 10:.1f}" font-weight="600">{escape(_cut(node.label))}</text>',
        f'<text x="{x + PAD:.1f}" y="{y + PAD + 10 + LINE_H:.1f}" fill="#57606a">{escape(_cut(node.detail))}</text>',
    ]
    line_y = y + PAD + 10 + 2 * LINE_H
    for line in (line for line in node.lines if line):
        color = RED if node.red and line is node.lines[0] else "#24292f"
        parts.append(f'<text x="{x + PAD:.1f}" y="{line_y:.1f}" fill="{color}">{escape(_cut(line))}</text>')
        line_y += LINE_H
    for text, red, _tip in node.members[:MAX_MEMBERS]:
        parts.append(f'<text class="map-member" x="{x + PAD + 6:.1f}" y="{line_y:.1f}" font-size="10" '
                     f'fill="{RED if red else "#24292f"}">{escape(_cut(text, CHARS + 4))}</text>')
        line_y += LINE_H
    if len(node.members) > MAX_MEMBERS:
        parts.append(f'<text x="{x + PAD + 6:.1f}" y="{line_y:.1f}" font-size="10" fill="#57606a">'
                     f'+{len(node.members) - MAX_MEMBERS} more</text>')
    parts.append("</g>")
    parts.append("</a>" if node.link else "")
    return "".join(parts)


def map_svg(graph: Graph) -> SafeString:
    """The whole map as one <svg>: edges first, then the nodes over them, then the edges' labels."""
    placed, width, height, headings = layout(graph)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="pipeline-map-svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="pipeline map: {len(graph.nodes)} nodes" '
             f'style="font:11px sans-serif">']
    for col, heading in headings.items():
        x = col * (NODE_W + COL_GAP) + 10
        parts.append(f'<text x="{x}" y="14" fill="#57606a" font-size="10" '
                     f'letter-spacing=".05em">{escape(heading.upper())}</text>')
    labels: list[str] = []
    incoming: dict[str, int] = {}
    for edge in graph.edges:
        if edge.source not in placed or edge.target not in placed:
            continue
        sx, sy, sh = placed[edge.source]
        tx, ty, th = placed[edge.target]
        x1, y1, x2, y2 = sx + NODE_W, sy + sh / 2, tx, ty + th / 2
        bend = max((x2 - x1) / 2, 30)
        color, dash = _EDGE[edge.kind]
        color = RED if edge.red else color
        parts.append(
            f'<path class="map-edge" data-edge="{escape(edge.source)}>{escape(edge.target)}" '
            f'd="M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" '
            f'fill="none" stroke="{color}" stroke-width="{2 if edge.red else 1.3}"'
            f'{f" stroke-dasharray={chr(34)}{dash}{chr(34)}" if dash else ""} marker-end="url(#map-arrow)">'
            f'<title>{escape(edge.source)} → {escape(edge.target)} {escape(edge.label)}</title></path>')
        if edge.label:
            k = incoming.get(edge.target, 0)
            incoming[edge.target] = k + 1
            labels.append(f'<text class="map-edge-label" x="{x2 - 6:.1f}" y="{ty + 12 + k * 12:.1f}" '
                          f'text-anchor="end" font-size="10" fill="{RED if edge.red else "#24292f"}" '
                          f'stroke="#fff" stroke-width="3" paint-order="stroke">{escape(edge.label)}</text>')
    parts.insert(1, '<defs><marker id="map-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="6" '
                    'markerHeight="6" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#57606a"/></marker></defs>')
    parts += [_node_svg(node, *placed[node.id]) for node in graph.nodes.values()]
    parts += labels
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every name escaped, every other value a number we formatted
