#!/usr/bin/env python3
"""Fails when the gateway's top-level modules import each other in a cycle.

Reads every `crate::NAME` path in gateway/src (use lines and inline paths), takes the top-level
module of the file (`s3/copy.rs` → `s3`) and of the path (`crate::identity::iam` → `identity`),
and looks for cycles in that graph. `lib.rs` and `main.rs` are the roots and are left out.
Usage: scripts/module-cycles.py [SRC_DIR]"""
import pathlib
import re
import sys

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "gateway/src")
edges = {}
for f in src.rglob("*.rs"):
    rel = f.relative_to(src)
    if rel.name in ("lib.rs", "main.rs") and len(rel.parts) == 1:
        continue
    module = rel.parts[0].removesuffix(".rs")
    text = f.read_text()
    # Test modules may reach anywhere.
    text = text.split("#[cfg(test)]\nmod tests", 1)[0]
    for m in re.finditer(r"\bcrate::([a-z_][a-z0-9_]*)", text):
        target = m.group(1)
        if target != module:
            edges.setdefault(module, set()).add(target)
for m in list(edges):
    edges[m] = {t for t in edges[m] if (src / f"{t}.rs").exists() or (src / t / "mod.rs").exists()}

cycles = []
state = {}
stack = []


def visit(node):
    state[node] = "open"
    stack.append(node)
    for nxt in sorted(edges.get(node, ())):
        if state.get(nxt) == "open":
            cycles.append(stack[stack.index(nxt):] + [nxt])
        elif nxt not in state:
            visit(nxt)
    stack.pop()
    state[node] = "done"


for n in sorted(edges):
    if n not in state:
        visit(n)
if cycles:
    for c in cycles:
        print("import cycle between gateway modules: " + " -> ".join(c), file=sys.stderr)
    sys.exit(1)
print(f"module graph: {len(edges)} modules, no import cycle")
