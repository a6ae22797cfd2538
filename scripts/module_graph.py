#!/usr/bin/env python3
"""Which module of src/ imports which, and any import cycle (exit status 1 if one).

Usage: python3 scripts/module_graph.py [SRC_DIR]

Reads `use` lines and `crate::`/`super::` paths (tests excluded); a name the crate root
re-exports counts as an import of the module that defines it. A module's own children
are not counted: declaring them is not importing them. The layout's rule is that every
import points one way, so `.ci/run` fails when this finds a cycle.
"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else "src"
mods = {}
for dp, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs"):
            p = os.path.join(dp, f); rel = os.path.relpath(p, root)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib"): rel = rel[:-1]
            mods["::".join(rel)] = open(p).read()
# Names the crate root re-exports (`pub use module::Name`), so `crate::Name` is an
# import of the module that defines it.
reexports = {}
for mod, group in re.findall(r"pub(?:\(crate\))? use (\w+)::\{?([\w, ]+)\}?;", mods.get("", "")):
    for name in re.split(r"[,\s]+", group):
        if name: reexports[name] = mod
def resolve(cur, path):
    parts = path.split("::")
    base = cur.split("::") if cur else []
    if parts[0] == "crate":
        base = []; parts = parts[1:]
        if parts and parts[0] in reexports: parts = [reexports[parts[0]]] + parts[1:]
    elif parts[0] == "super":
        while parts and parts[0] == "super": base = base[:-1]; parts = parts[1:]
    elif parts[0] == "self": parts = parts[1:]
    else: base = base  # child module or external
    best = None
    for i in range(len(parts), 0, -1):
        cand = "::".join(base + parts[:i])
        if cand in mods: best = cand; break
    if best is None and not base and parts: return ""  # crate root
    return best
edges = {}
for m, text in mods.items():
    text = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", text, flags=re.S)
    text = re.sub(r"//.*", "", text)
    targets = set()
    for u in re.findall(r"\buse\s+((?:crate|super|self)(?:::\w+)*)(?:::\{([^;]*)\})?", text):
        head, group = u
        if group:
            for item in re.split(r"[,\s]+", re.sub(r"\{[^}]*\}", "", group)):
                if item and item != "self": targets.add(resolve(m, head + "::" + item.split("::")[0] if "::" not in item else head + "::" + item))
                elif item == "self": targets.add(resolve(m, head))
        else: targets.add(resolve(m, head))
    for q in re.findall(r"\b((?:crate|super)(?:::\w+)+)", text): targets.add(resolve(m, q))
    targets.discard(None); targets.discard(m)
    # a child's import of its own descendants is fine; ignore the crate root (re-exports)
    edges[m] = sorted(t for t in targets if t != "" and not t.startswith(m + "::") or (m == "" and t))
# the crate root re-exports only: drop its edges
edges.pop("", None)
for m in sorted(edges): print(f"{m or 'lib'} -> {', '.join(edges[m]) or '-'}")
# cycles (Tarjan)
index = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
def strong(v):
    index[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges.get(v, []):
        if w not in index: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(comp)
sys.setrecursionlimit(10000)
for v in list(edges):
    if v not in index: strong(v)
print("cycles:", sccs if sccs else "none")
sys.exit(1 if sccs else 0)
