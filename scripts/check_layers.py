#!/usr/bin/env python3
"""check_layers.py - keeps courant's modules in their documented layers.

The layer table lives in docs/ARCHITECTURE.md, between the markers
"<!-- layers:begin -->" and "<!-- layers:end -->": one table row per layer,
lowest first, its modules in the last column. This script fails when:

  - a module under src/ is in no layer (every module is placed);
  - a module includes a module of a higher layer (an upward call);
  - modules of one layer include each other in a cycle, except in the
    layer named "loop core", whose modules (conn, stream, worker, ...) may
    refer back and forth.

    python3 scripts/check_layers.py [repo root]
"""
import os
import re
import sys

CORE = "loop core"


def read_layers(doc):
    text = open(doc, encoding="utf-8").read()
    m = re.search(r"<!-- layers:begin -->(.*?)<!-- layers:end -->", text, re.S)
    if not m:
        sys.exit(f"check_layers: no layer table in {doc}")
    layers = []  # (name, set of modules), lowest first
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].isdigit():
            continue
        mods = {x.strip(" `") for x in cells[-1].split(",") if x.strip(" `")}
        layers.append((cells[1], mods))
    return layers


def includes(path):
    out = set()
    for line in open(path, encoding="utf-8", errors="replace"):
        m = re.match(r'\s*#\s*include\s+"([^"]+)\.h"', line)
        if m:
            out.add(os.path.basename(m.group(1)))
    return out


def sccs(graph):
    """Tarjan's strongly connected components."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            out.append(comp)

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    layers = read_layers(os.path.join(root, "docs", "ARCHITECTURE.md"))
    layer_of, name_of = {}, {}
    for i, (name, mods) in enumerate(layers):
        for m in mods:
            layer_of[m] = i
        name_of[i] = name
    src = os.path.join(root, "src")
    graph, errors = {}, []
    for f in sorted(os.listdir(src)):
        if not f.endswith((".c", ".h")):
            continue
        mod = f[:-2]
        if mod not in layer_of:
            errors.append(f"src/{f}: module '{mod}' is in no layer of docs/ARCHITECTURE.md")
            continue
        for inc in includes(os.path.join(src, f)):
            if inc == mod or inc not in layer_of:
                continue  # itself, or a generated/system-like header (checked by the compiler)
            graph.setdefault(mod, set()).add(inc)
            if layer_of[inc] > layer_of[mod]:
                errors.append(
                    f"src/{f}: includes {inc}.h, layer {layer_of[inc]} ({name_of[layer_of[inc]]}), "
                    f"above its own layer {layer_of[mod]} ({name_of[layer_of[mod]]})")
    for comp in sccs(graph):
        if len(comp) < 2:
            continue
        layer_names = {name_of[layer_of[m]] for m in comp}
        if layer_names != {CORE}:
            errors.append("include cycle outside the loop core: " + " -> ".join(sorted(comp)))
    for e in errors:
        print(f"check_layers: {e}")
    if errors:
        return 1
    print(f"check_layers: {len(layer_of)} modules in {len(layers)} layers, no upward include, "
          f"no cycle outside the loop core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
