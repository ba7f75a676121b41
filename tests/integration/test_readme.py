#!/usr/bin/env python3
"""test_readme.py — every command block of README.md that a user is told to run (a ```sh
fence) is run by some test: each test script that runs README blocks declares them in
README_BLOCKS (tests/lib/readme.py), and this checks that every sh block is claimed and
every claim names a block that exists. Read without importing the scripts (their
module-level code is not run). The `make test` block is claimed here: it is what .ci/run
runs, and this checks that .ci/run runs exactly that command. README.md and docs/ stand
alone: no link to ../shared and no "SPEC §" reference."""
import ast
import glob
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import readme  # noqa: E402
import relaytest as rt  # noqa: E402

README_BLOCKS = [("relaypro", 1)]  # make test: run by .ci/run, checked below


def claims():
    """{(heading, index): [script, ...]} from every tests/integration/*.py."""
    out = {}
    for path in sorted(glob.glob(os.path.join(rt.REPO_DIR, "tests", "integration", "*.py"))):
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        consts = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                    isinstance(node.targets[0], ast.Name):
                try:
                    consts[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    # README_BLOCKS built from names: evaluate with the string constants
                    if node.targets[0].id == "README_BLOCKS":
                        consts["README_BLOCKS"] = eval(compile(ast.Expression(node.value), path, "eval"),
                                                       {"__builtins__": {}, "range": range},
                                                       {k: v for k, v in consts.items()
                                                        if isinstance(v, (str, int))})
        for h, i in consts.get("README_BLOCKS", []):
            out.setdefault((h, i), []).append(os.path.basename(path))
    return out


@rt.case
def every_sh_block_is_claimed():
    blocks = readme.sh_blocks()
    rt.check(len(blocks) > 0, "README has sh blocks")
    c = claims()
    for b in blocks:
        rt.check((b.heading, b.index) in c, "README line %d (%r #%d) is run by a test"
                 % (b.line, b.heading, b.index), "no test declares it in README_BLOCKS")
    have = {(b.heading, b.index) for b in blocks}
    for key, who in sorted(c.items()):
        rt.check(key in have, "claim %r by %s names a block that exists" % (key, ", ".join(who)))


@rt.case
def make_test_is_what_ci_runs():
    block = readme.block("relaypro", 1).strip()
    rt.check_eq(block, "make test", "the README's test command")
    with open(os.path.join(rt.REPO_DIR, ".ci", "run")) as f:
        cmds = [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
    rt.check(block in cmds, ".ci/run runs exactly the README's `make test`", cmds)
    rt.check_eq(readme.block("relaypro", 0).strip(), "make run", "the README's first command")


@rt.case
def no_link_leaves_the_repository():
    files = [os.path.join(rt.REPO_DIR, "README.md")] + \
        sorted(glob.glob(os.path.join(rt.REPO_DIR, "docs", "*.md")))
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        name = os.path.relpath(path, rt.REPO_DIR)
        rt.check("../shared" not in text and "SPEC.md" not in text,
                 "%s: no link to ../shared/SPEC.md" % name)
        rt.check(not re.search(r"SPEC\s*§", text), "%s: no \"SPEC §\" reference" % name,
                 re.findall(r".{30}SPEC\s*§.{10}", text)[:3])
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            p = os.path.normpath(os.path.join(os.path.dirname(path), target))
            rt.check(os.path.exists(p) and p.startswith(rt.REPO_DIR + os.sep),
                     "%s: link %s resolves inside the repository" % (name, target))


if __name__ == "__main__":
    rt.main("readme", deadline=60)
