#!/usr/bin/env python3
"""The source layout's rules, checked (a step of `make test` and `make unit`):

1. No include cycle between modules. A module is src/X.c with src/X.h; it depends on Y
   when X.c or X.h includes "Y.h". The dependency graph must be acyclic, so every module
   can be read (and tested) with only what is below it. Two cycles predate this test and
   are listed in KNOWN_CYCLES with their reasons (printed, never counted as a pass); any other
   strongly connected group of modules fails.
2. Every file in src/ opens with its contract comment: "/*", then " * <file> — ...".
3. No file in src/ longer than 600 lines (the split's hard limit), except the files listed
   in PENDING with the reason they are still long; each of those is printed, never counted
   as a pass.

Last line: "layout: N passed, N failed".
"""

import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src")
LIMIT = 600
# Files longer than LIMIT that a later step of the split (issue 16, phase B) takes apart.
PENDING = {
}

# Groups of modules that depend on each other, not yet taken apart.
KNOWN_CYCLES = {
}

passed = failed = 0


def check(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL " + name + ("  " + detail if detail else ""))


def graph():
    files = sorted(f for f in os.listdir(SRC) if f.endswith((".c", ".h")))
    mods = {f[:-2] for f in files}
    deps = {m: set() for m in mods}
    for f in files:
        with open(os.path.join(SRC, f)) as fh:
            for line in fh:
                m = re.match(r'\s*#\s*include\s+"([^"]+)\.h"', line)
                if m and m.group(1) in mods and m.group(1) != f[:-2]:
                    deps[f[:-2]].add(m.group(1))
    return files, deps


def cycles(deps):
    """The strongly connected groups of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(deps):
        if root in index:
            continue
        work = [(root, iter(sorted(deps[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(deps[nxt]))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    m = stack.pop()
                    on.discard(m)
                    group.add(m)
                    if m == node:
                        break
                if len(group) > 1:
                    out.append(frozenset(group))
    return out


def main():
    files, deps = graph()
    groups = cycles(deps)
    new = [g for g in groups if g not in KNOWN_CYCLES]
    for g in groups:
        if g in KNOWN_CYCLES:
            print("note modules %s depend on each other: %s" % ("+".join(sorted(g)), KNOWN_CYCLES[g]))
    check(not new, "no include cycle among %d modules" % len(deps),
          "; ".join("+".join(sorted(g)) for g in new))
    for g in KNOWN_CYCLES:
        if g not in groups:
            check(False, "%s no longer depend on each other: drop them from KNOWN_CYCLES"
                  % "+".join(sorted(g)))
    for f in files:
        with open(os.path.join(SRC, f)) as fh:
            text = fh.read()
        lines = text.count("\n")
        head = text.split("\n", 2)
        check(len(head) > 2 and head[0] == "/*" and head[1].startswith(" * %s \u2014 " % f),
              "%s opens with its contract comment" % f)
        if f in PENDING:
            if lines > LIMIT:
                print("note %s: %d lines, over %d until %s" % (f, lines, LIMIT, PENDING[f]))
            else:
                check(False, "%s is listed as pending but has %d lines: drop it from PENDING"
                      % (f, lines))
            continue
        check(lines <= LIMIT, "%s: %d lines <= %d" % (f, lines, LIMIT))
    print("layout: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
