#!/usr/bin/env python3
"""Print the import graph between the top-level modules of a Rust binary or library crate
and fail when the modules form a cycle.

Usage: scripts/module-cycles.py crates/forward/src

A module is a file `src/NAME.rs` or a directory `src/NAME/`; an edge A -> B is any
`crate::B` path in A's files (use declarations and inline paths alike). Test modules
(`#[cfg(test)] mod tests` blocks at the end of a file) are left out: tests may reach anywhere.
"""
import os
import re
import sys


def modules(src):
    mods = {}
    for entry in sorted(os.listdir(src)):
        path = os.path.join(src, entry)
        if entry.endswith(".rs") and entry not in ("main.rs", "lib.rs"):
            mods.setdefault(entry[:-3], []).append(path)
        elif os.path.isdir(path):
            for root, _, files in os.walk(path):
                for f in files:
                    if f.endswith(".rs"):
                        mods.setdefault(entry, []).append(os.path.join(root, f))
    return mods


def strip_tests(text):
    # The test module of a file: from `#[cfg(test)]` followed by `mod` to the end.
    m = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod \w+", text, re.M)
    return text[: m.start()] if m else text


def edges(mods):
    graph = {m: set() for m in mods}
    for m, files in mods.items():
        for f in files:
            text = strip_tests(open(f, encoding="utf-8").read())
            # `use crate::{a, b::c}` and `crate::a::...` paths.
            for group in re.findall(r"crate::\{([^}]*)\}", text):
                for part in group.split(","):
                    name = part.strip().split("::")[0]
                    if name in graph and name != m:
                        graph[m].add(name)
            for name in re.findall(r"crate::(\w+)", text):
                if name in graph and name != m:
                    graph[m].add(name)
    return graph


def cycles(graph):
    """Tarjan's strongly connected components with more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "crates/forward/src"
    graph = edges(modules(src))
    for m in sorted(graph):
        print(f"{m} -> {', '.join(sorted(graph[m])) or '(nothing)'}")
    found = cycles(graph)
    if found:
        for c in found:
            print("import cycle among: " + ", ".join(c), file=sys.stderr)
        return 1
    print(f"{len(graph)} modules, no import cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
