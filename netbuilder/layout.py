"""Automatic layered layout, top to bottom, Qt-free.

1. Levels: longest path from the sources (every node below all of its inputs).
2. Wires that skip levels get dummy points, one per level they cross.
3. Order within levels: barycentre sweeps down and up, keeping the order with the fewest
   crossings (input ports count: port 0 sits left of port 1).
4. x: each level is placed as close as possible to the average of its neighbours (isotonic
   regression under the order and minimum gaps), alternating down and up passes; y: levels
   stacked with their tallest node.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Pos = tuple[float, float]
Size = tuple[float, float]
EdgeT = tuple[str, str, int]


def _levels(nodes: Sequence[str], edges: Sequence[EdgeT]) -> dict[str, int]:
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for s, d, _ in edges:
        preds[d].append(s)
        succs[s].append(d)
    indeg = {n: len(preds[n]) for n in nodes}
    ready = [n for n in nodes if indeg[n] == 0]
    level: dict[str, int] = {}
    i = 0
    while True:
        while i < len(ready):
            n = ready[i]
            i += 1
            level[n] = max((level[p] + 1 for p in preds[n] if p in level), default=0)
            for m in succs[n]:
                indeg[m] -= 1
                if indeg[m] == 0:
                    ready.append(m)
        rest = [n for n in nodes if n not in level]
        if not rest:
            return level
        ready.append(rest[0])  # a cycle: break it at the first node left


def _isotonic(values: list[float], weights: list[float]) -> list[float]:
    """Non-decreasing sequence closest to ``values`` in weighted least squares (PAV)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values, weights):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out: list[float] = []
    for m, _, c in blocks:
        out.extend([m] * int(c))
    return out


def _crossings(upper: dict[str, float], segs: list[tuple[str, str, float]],
               lower: dict[str, float]) -> int:
    pts = sorted((upper[u], lower[v] + off) for u, v, off in segs)
    n = 0
    for i in range(len(pts)):
        a = pts[i]
        for j in range(i + 1, len(pts)):
            b = pts[j]
            if b[0] > a[0] and b[1] < a[1]:
                n += 1
    return n


def layered_layout(nodes: Iterable[str], edges: Iterable[EdgeT],
                   sizes: dict[str, Size] | None = None, *, h_gap: float = 48.0,
                   v_gap: float = 44.0, origin: Pos = (0.0, 0.0), grid: float | None = None,
                   sweeps: int = 12) -> dict[str, Pos]:
    """Top-left position of every node. ``edges`` are (src, dst, input port) triples."""
    nodes = list(dict.fromkeys(nodes))
    if not nodes:
        return {}
    node_set = set(nodes)
    edges = [(s, d, p) for s, d, p in edges if s in node_set and d in node_set and s != d]
    sizes = sizes or {}
    size = {n: sizes.get(n, (180.0, 80.0)) for n in nodes}
    n_ports = {n: 1 for n in nodes}
    for _, d, p in edges:
        n_ports[d] = max(n_ports[d], p + 1)

    level = _levels(nodes, edges)
    depth = max(level.values()) + 1
    # segments between adjacent levels; (upper, lower, port offset in node widths)
    seg: list[list[tuple[str, str, float]]] = [[] for _ in range(depth)]
    port_dx: dict[tuple[str, str], float] = {}
    layer_of: dict[str, int] = dict(level)
    widths: dict[str, float] = {n: size[n][0] for n in nodes}
    dummy = 0
    for s, d, p in edges:
        ls, ld = level[s], level[d]
        if ld <= ls:
            continue
        off = (p + 1) / (n_ports[d] + 1) - 0.5
        prev = s
        for lv in range(ls + 1, ld):
            dummy += 1
            name = f"\0{dummy}"
            layer_of[name] = lv
            widths[name] = 12.0
            seg[lv - 1].append((prev, name, 0.0))
            prev = name
        seg[ld - 1].append((prev, d, off))
        port_dx[(prev, d)] = off * widths[d]

    order: list[list[str]] = [[] for _ in range(depth)]
    for n in nodes:
        order[level[n]].append(n)
    for lv in range(depth - 1):
        for _, v, _ in seg[lv]:
            if v.startswith("\0"):
                order[lv + 1].append(v)
    up: dict[str, list[tuple[str, float]]] = {n: [] for n in layer_of}
    down: dict[str, list[tuple[str, float]]] = {n: [] for n in layer_of}
    for lv in range(depth - 1):
        for u, v, off in seg[lv]:
            up[v].append((u, off))
            down[u].append((v, off))

    def rank(lst: list[str]) -> dict[str, float]:
        return {n: float(i) for i, n in enumerate(lst)}

    def total_crossings(od: list[list[str]]) -> int:
        ranks = [rank(lst) for lst in od]
        return sum(_crossings(ranks[lv], seg[lv], ranks[lv + 1]) for lv in range(depth - 1))

    best = [list(lst) for lst in order]
    best_x = total_crossings(best)
    for sweep in range(sweeps):
        if best_x == 0:
            break
        if sweep % 2 == 0:
            for lv in range(1, depth):
                r = rank(order[lv - 1])
                cur = rank(order[lv])
                order[lv].sort(key=lambda n, r=r, cur=cur: (
                    sum(r[u] for u, _ in up[n]) / len(up[n]) if up[n] else cur[n]))
        else:
            for lv in range(depth - 2, -1, -1):
                r = rank(order[lv + 1])
                cur = rank(order[lv])
                order[lv].sort(key=lambda n, r=r, cur=cur: (
                    sum(r[v] + 0.5 * off for v, off in down[n]) / len(down[n])
                    if down[n] else cur[n]))
        c = total_crossings(order)
        if c < best_x:
            best, best_x = [list(lst) for lst in order], c
    order = best

    # x coordinates (node centres)
    x: dict[str, float] = {}
    for lst in order:
        cur = 0.0
        for i, n in enumerate(lst):
            if i:
                cur += (widths[lst[i - 1]] + widths[n]) / 2 + h_gap
            x[n] = cur
        mid = (x[lst[0]] + x[lst[-1]]) / 2 if lst else 0.0
        for n in lst:
            x[n] -= mid

    def place(lst: list[str], nbrs: dict[str, list[tuple[str, float]]], sign: float) -> None:
        targets, weights, cum = [], [], []
        c = 0.0
        for i, n in enumerate(lst):
            if i:
                c += (widths[lst[i - 1]] + widths[n]) / 2 + h_gap
            cum.append(c)
            if nbrs[n]:
                t = sum(x[m] + sign * _dx(n, m, sign) for m, _ in nbrs[n]) / len(nbrs[n])
                w = float(len(nbrs[n])) * (2.0 if n.startswith("\0") else 1.0)
            else:
                t, w = x[n], 0.25
            targets.append(t - c)
            weights.append(w)
        for n, y, c in zip(lst, _isotonic(targets, weights), cum):
            x[n] = y + c

    def _dx(n: str, m: str, sign: float) -> float:
        # sign < 0: m is above n, n's input port is offset; sign > 0: m below, m's port offset
        return port_dx.get((m, n), 0.0) if sign < 0 else port_dx.get((n, m), 0.0)

    for _ in range(6):
        for lv in range(1, depth):
            place(order[lv], up, -1.0)
        for lv in range(depth - 2, -1, -1):
            place(order[lv], down, 1.0)
    for lv in range(1, depth):
        place(order[lv], up, -1.0)

    # y coordinates and top-left corners
    out: dict[str, Pos] = {}
    y = 0.0
    heights = [max((size[n][1] for n in lst if n in size), default=0.0) for lst in order]
    min_x = min(x[n] - widths[n] / 2 for n in nodes)
    for lv, lst in enumerate(order):
        for n in lst:
            if n in size:
                out[n] = (x[n] - widths[n] / 2 - min_x + origin[0], y + origin[1])
        y += heights[lv] + v_gap
    if grid:
        out = {n: (round(px / grid) * grid, round(py / grid) * grid) for n, (px, py) in out.items()}
    return out
