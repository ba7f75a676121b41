"""readme.py — the README's command blocks, for the tests that run them as written.

A block the README tells a user to run is a fenced block whose info string is `sh`. Every
other fence (`text`, `ini`, `console`, ...) is illustration and is never run. A test fetches
a block by the heading it sits under (the nearest heading above it, matched on its text)
and its index among the sh blocks under that heading, and runs it unchanged — except for
placeholder values that cannot work on a test machine (a console's address, a deployment
token), which the test replaces through `subst`. Each replacement must match the block at
least once, so a README that drifts away from its test fails instead of passing silently.

Each test script that runs README blocks declares them in a module-level constant

    README_BLOCKS = [("Copy one binary onto a host", 0), ...]

and tests/integration/test_readme.py checks that every sh block of README.md is claimed
by some test (and that every claim names a block that exists).
"""
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(ROOT, "README.md")

_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([A-Za-z0-9_+-]*)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


class Block:
    def __init__(self, heading, index, text, line, lang):
        self.heading = heading  # text of the nearest heading above the block
        self.index = index      # among the sh blocks under that heading, from 0
        self.text = text        # the block's lines, indentation of the fence removed
        self.line = line        # 1-based line of the opening fence
        self.lang = lang

    def __repr__(self):
        return "Block(%r, %d, line %d)" % (self.heading, self.index, self.line)


def parse(path=README):
    """Every fenced block of a markdown file, in order (sh blocks numbered per heading)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out, heading, count = [], "", {}
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            h = _HEADING.match(lines[i])
            if h:
                heading = h.group(2)
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3)
        start = i + 1
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            ln = lines[i]
            body.append(ln[len(indent):] if ln.startswith(indent) else ln.lstrip())
            i += 1
        i += 1  # the closing fence
        idx = -1
        if lang == "sh":
            idx = count.get(heading, 0)
            count[heading] = idx + 1
        out.append(Block(heading, idx, "\n".join(body) + "\n", start, lang))
    return out


def sh_blocks(path=README):
    return [b for b in parse(path) if b.lang == "sh"]


def block(heading, index=0, subst=None, path=README):
    """The text of sh block `index` under `heading`, with each (old, new) of subst
    replaced. Raises LookupError when the block or a replacement's old text is missing."""
    for b in sh_blocks(path):
        if b.heading == heading and b.index == index:
            text = b.text
            for old, new in (subst or {}).items():
                if old not in text:
                    raise LookupError("README block %r #%d (line %d) no longer contains %r"
                                      % (heading, index, b.line, old))
                text = text.replace(old, new)
            return text
    raise LookupError("README has no sh block %d under the heading %r" % (index, heading))


def run(text, env=None, cwd=None, timeout=300, shell="bash"):
    """Run a block with `bash -euo pipefail` (a failing line fails the block). Returns the
    CompletedProcess (stdout and stderr captured as text)."""
    return subprocess.run([shell, "-euo", "pipefail", "-c", text], env=env, cwd=cwd,
                          timeout=timeout, capture_output=True, text=True)
