#!/usr/bin/env python3
"""Rewrites the keys and outputs of every step type in docs/man/mmigrate-plan.5
from the step tables themselves (`mmigrate steps`), keeping each section's prose.

    scripts/gen-man-steps.py BUILD/mmigrate [--check]

--check exits 1 when the page is out of date instead of writing it.
"""
import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent / "docs" / "man" / "mmigrate-plan.5"


def step_tables(binary):
    out = subprocess.run([binary, "steps"], check=True, capture_output=True, text=True).stdout
    types, cur = {}, None
    for line in out.splitlines():
        head = re.match(r"^(\w+): ", line)
        if head:
            cur = types.setdefault(head.group(1), {"keys": [], "outputs": []})
            continue
        outs = re.match(r"^    outputs: (.*)$", line)
        if outs and cur is not None:
            cur["outputs"] = outs.group(1).split()
            continue
        key = re.match(r"^    (\S+)\s+(\S+)\s+(.*)$", line)
        if key and cur is not None:
            cur["keys"].append(key.groups())
    return types


def roff(text):
    return text.replace("\\", "\\\\").replace("-", "\\-")


def entry(name, kind, doc):
    default = None
    required = doc.startswith("required. ")
    if required:
        doc = doc[len("required. "):]
    m = re.search(r";\s*default (\S+)$", doc)
    if m:
        default, doc = m.group(1), doc[:m.start()]
    if required:
        what = "%s, required" % kind
    elif default is not None:
        what = "%s, default \\fB%s\\fR" % (kind, roff(default))
    else:
        what = "%s, optional" % kind
    doc = doc[:1].upper() + doc[1:]
    if not doc.endswith("."):
        doc += "."
    return ".TP\n.BR %s \" (%s)\"\n%s\n" % (name, what, roff(doc))


def rewrite(page, types):
    parts = re.split(r"(?m)^(?=\.S[SH] )", page)
    out = []
    for part in parts:
        m = re.match(r"\.SS (\w+)\n", part)
        if not m or m.group(1) not in types:
            out.append(part)
            continue
        t = types[m.group(1)]
        prose = part.split("\n.TP\n", 1)[0] if "\n.TP\n" in part else part.split("\n.PP\nOutputs:", 1)[0]
        prose = prose.rstrip("\n") + "\n"
        body = "".join(entry(*k) for k in t["keys"])
        outs = ", ".join("\\fB%s\\fR" % o for o in t["outputs"])
        out.append(prose + body + (".PP\nOutputs: %s.\n" % outs if outs else ""))
    return "".join(out)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    page = PAGE.read_text()
    new = rewrite(page, step_tables(sys.argv[1]))
    if "--check" in sys.argv:
        if new != page:
            sys.exit("%s is out of date: run scripts/gen-man-steps.py %s" % (PAGE, sys.argv[1]))
        return
    PAGE.write_text(new)


if __name__ == "__main__":
    main()
