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


class Help(unittest.TestCase):
    def test_every_command(self):
        for cmd in COMMANDS:
            with self.subTest(cmd=cmd):
                h = run(["help", cmd])
                self.assertEqual(h.returncode, 0, h.stderr)
                self.assertTrue(h.stdout.startswith("usage: mmigrate [options] %s" % cmd), h.stdout)
                self.assertIn("\nexample:\n  mmigrate ", h.stdout)
                d = run([cmd, "--help"])
                self.assertEqual(d.returncode, 0, d.stderr)
                self.assertEqual(d.stdout, h.stdout)
                self.assertEqual(run([cmd, "-h"]).stdout, h.stdout)

    def test_server_synopsis(self):
        self.assertIn("server PLAN SERVER exports|imports|uploads|jobs TYPE [JOB_ID]", run(["help", "server"]).stdout)

    def test_plain_help_is_the_usage(self):
        for args in (["help"], ["--help"]):
            p = run(args)
            self.assertEqual(p.returncode, 0)
            self.assertTrue(p.stdout.startswith("usage: mmigrate [options] <command>"), p.stdout)

    def test_unknown_topic(self):
        p = run(["help", "aply"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("did you mean 'apply'?", p.stderr)
        p = run(["help", "frobnicate"])
        self.assertEqual(p.returncode, 2)
        self.assertNotIn("did you mean", p.stderr)
        self.assertEqual(p.stdout, "")


def step_table():
    """{type: [keys]} and outputs from `mmigrate steps`."""
    types, cur = {}, None
    for line in run(["steps"], check_exit=0).stdout.splitlines():
        m = re.match(r"^(\w+): ", line)
        if m:
            cur = types.setdefault(m.group(1), {"keys": [], "outputs": []})
        elif cur is None:
            continue  # the keys every step takes come first
        elif line.startswith("    outputs: "):
            cur["outputs"] = line.split()[1:]
        elif line.startswith("    "):
            cur["keys"].append(line.split()[0])
    return types


class ManPages(unittest.TestCase):
    PAGES = ["docs/man/mmigrate.1", "docs/man/mmigrate-plan.5"]

    def test_render_without_warnings(self):
        if not shutil.which("groff"):
            self.skipTest("groff is not installed (scripts/deps.sh installs groff-base)")
        for page in self.PAGES:
            with self.subTest(page=page):
                p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", os.path.join(SRC, page)],
                                   capture_output=True, text=True)
                self.assertEqual((p.returncode, p.stderr), (0, ""))

    def rendered(self, page):
        if not shutil.which("groff"):
            self.skipTest("groff is not installed")
        # No hyphenation, long lines: words and keys stay whole.
        p = subprocess.run(["groff", "-man", "-Tascii", "-P-cbou", "-rHY=0", "-rLL=300n", os.path.join(SRC, page)],
                           capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
        return p.stdout

    def test_mmigrate_1_has_every_command_and_exit_status(self):
        text = self.rendered(self.PAGES[0])
        for cmd in COMMANDS:
            self.assertRegex(text, r"\n {7}%s\b" % cmd)
        for section in ("EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES"):
            self.assertIn("\n" + section + "\n", text)
        for code in ("0", "1", "2", "3", "4", "130, 143"):
            self.assertRegex(text, r"\n {7}%s\s" % re.escape(code))

    def test_plan_5_is_generated_from_the_step_tables(self):
        res = subprocess.run([sys.executable, os.path.join(SRC, "scripts", "gen-man-steps.py"), BIN, "--check"],
                             capture_output=True, text=True)
        self.assertEqual(res.returncode, 0, res.stderr)

    def test_plan_5_has_every_step_key_and_output(self):
        text = self.rendered(self.PAGES[1])
        for typ, t in step_table().items():
            self.assertRegex(text, r"\n {3}%s\n" % typ)
            section = re.split(r"\n {3}\S", text.split("\n   %s\n" % typ, 1)[1], 1)[0]
            for key in t["keys"]:
                self.assertRegex(section, r"\n {7}%s \(" % re.escape(key), "%s.%s" % (typ, key))
            for out in t["outputs"]:
                self.assertIn(out, section.split("Outputs:")[-1], "%s output %s" % (typ, out))


COMPLETION_PLAN = """version: 1
name: comp
servers:
  source: {url: https://a.example, token: "${env:T}"}
  target:
    url: https://b.example
    token: ${env:T}
steps:
  - {id: login-source, type: auth, server: source}
  - id: export
    type: export
    server: source
  - {id: "dl", type: download, server: source, export: "${steps.export.file}"}
"""


class BashCompletion(unittest.TestCase):
    def setUp(self):
        if not shutil.which("bash"):
            self.skipTest("no bash")
        self.wd = Workdir(self)
        self.wd.plan(COMPLETION_PLAN)
        self.wd.write("other.yml", "")
        self.wd.write("notes.txt", "")
        self.wd.write("archive.zip", "")
        os.makedirs(os.path.join(self.wd.path, "sub"))

    def complete(self, *words):
        script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); '
                  '_mmigrate; printf "%s\\n" "${COMPREPLY[@]}"')
        p = subprocess.run(["bash", "-c", script, "_",
                            os.path.join(SRC, "contrib", "completion", "mmigrate.bash"), "mmigrate"] + list(words),
                           capture_output=True, text=True, cwd=self.wd.path)
        self.assertEqual(p.returncode, 0, p.stderr)
        return sorted(w for w in p.stdout.split("\n") if w)

    def test_commands(self):
        self.assertEqual(self.complete(""), sorted(COMMANDS))
        self.assertEqual(self.complete("ap"), ["apply"])
        self.assertEqual(self.complete("help", "st"), ["status", "steps"])

    def test_step_ids_for_reset(self):
        self.assertEqual(self.complete("reset", "plan.yaml", ""), ["dl", "export", "login-source"])
        self.assertEqual(self.complete("--state-dir", "sub", "reset", "plan.yaml", "dl", "e"), ["export"])

    def test_plan_files(self):
        self.assertEqual(self.complete("apply", ""), ["other.yml", "plan.yaml", "sub"])
        self.assertEqual(self.complete("verify", ""), ["archive.zip", "sub"])

    def test_options(self):
        self.assertIn("--allow-dirty", self.complete("apply", "--"))
        self.assertNotIn("--allow-dirty", self.complete("plan", "--"))
        self.assertIn("--detailed-exitcode", self.complete("plan", "--"))
        self.assertEqual(self.complete("--output", ""), ["json", "text"])

    def test_server(self):
        self.assertEqual(self.complete("server", "plan.yaml", ""), ["source", "target"])
        self.assertEqual(self.complete("server", "plan.yaml", "target", ""), ["exports", "imports", "jobs", "uploads"])

    def test_zsh_syntax(self):
        if not shutil.which("zsh"):
            self.skipTest("no zsh")
        p = subprocess.run(["zsh", "-n", os.path.join(SRC, "contrib", "completion", "_mmigrate")],
                           capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stderr), (0, ""))


def cpack_depends():
    m = re.search(r'CPACK_DEBIAN_PACKAGE_DEPENDS\s+"([^"]*)"', read(os.path.join(SRC, "CMakeLists.txt")))
    if not m:
        return None
    return sorted(re.sub(r"\s*\(.*\)", "", d).strip() for d in m.group(1).split(","))


class Dockerfile(unittest.TestCase):
    RUNTIME = ["libcjson1", "libcurl4", "libgit2-1.5", "libssl3", "libyaml-0-2", "libzip4"]

    def setUp(self):
        self.text = read(os.path.join(SRC, "Dockerfile"))
        # Joined continuation lines, comments dropped.
        self.lines = [l for l in re.sub(r"\\\n", " ", self.text).split("\n") if l.strip() and not l.lstrip().startswith("#")]

    def test_stages_on_debian_12(self):
        froms = [l.split()[1] for l in self.lines if l.startswith("FROM ")]
        self.assertEqual(froms, ["debian:bookworm-slim", "debian:bookworm-slim"])
        self.assertIn("-DCMAKE_BUILD_TYPE=RelWithDebInfo", self.text)

    def test_runtime_packages_are_the_package_depends(self):
        runtime = self.text.split("\nFROM ")[-1]
        installs = re.sub(r"\\\n", " ", runtime)
        m = re.search(r"apt-get install ([^&\n]*)", installs)
        pkgs = sorted(w for w in m.group(1).split() if not w.startswith("-") and w != "ca-certificates")
        self.assertIn("ca-certificates", m.group(1).split())
        self.assertEqual(pkgs, cpack_depends() or self.RUNTIME)

    def test_runtime_stage_content(self):
        runtime = [l for l in self.lines[[i for i, l in enumerate(self.lines) if l.startswith("FROM ")][-1]:]]
        text = "\n".join(runtime)
        for src in ("build/mmigrate", "docs/man/mmigrate.1", "docs/man/mmigrate-plan.5",
                    "contrib/completion/mmigrate.bash", "contrib/completion/_mmigrate"):
            self.assertIn(src, text)
            if not src.startswith("build/"):
                self.assertTrue(os.path.exists(os.path.join(SRC, src)), src)
        user = [l.split()[1] for l in runtime if l.startswith("USER ")]
        self.assertTrue(user and not user[-1].startswith(("root", "0:")) and user[-1] != "0", user)
        self.assertRegex(text, r'ENTRYPOINT \["(/usr/bin/)?mmigrate"\]')
        self.assertNotRegex(text, r"build-essential|-dev\b|cmake")


class Examples(unittest.TestCase):
    def test_kubernetes_fleet(self):
        fleet = read(os.path.join(SRC, "examples", "kubernetes", "fleet.yaml"))
        self.assertIn("completionMode: Indexed", fleet)
        self.assertIn("$JOB_COMPLETION_INDEX", fleet)
        self.assertIn("persistentVolumeClaim", fleet)
        self.assertIn("secretRef", fleet)
        listed = block_scalar(fleet, "plans.list").split()
        embedded = [label.split("(")[-1].rstrip(")") for label, _ in block_scalar_plans(
            os.path.join(SRC, "examples", "kubernetes", "fleet.yaml"))]
        self.assertEqual(sorted(listed), sorted(embedded))
        self.assertRegex(fleet, r"completions: %d\b" % len(listed))
        cron = read(os.path.join(SRC, "examples", "kubernetes", "drift-cronjob.yaml"))
        self.assertIn("kind: CronJob", cron)
        self.assertIn("plan --detailed-exitcode", cron)

    def test_github_actions_keeps_the_checkpoint(self):
        wf = read(os.path.join(SRC, "examples", "github-actions", "migrate.yml"))
        self.assertIn("scripts/deps.sh", wf)
        self.assertIn("mmigrate validate", wf)
        self.assertIn("refs/tags/", wf)
        save = wf.split("actions/cache/save")[0].rsplit("- name:", 1)[-1]
        self.assertIn("if: always()", save)


class JsonOutput(unittest.TestCase):
    """docs/json-output.schema.json describes what --output json prints."""

    def setUp(self):
        self.schema = json.loads(read(os.path.join(SRC, "docs", "json-output.schema.json")))

    def check_event(self, line):
        ev = json.loads(line)
        props = self.schema["properties"]
        for key in self.schema["required"]:
            self.assertIn(key, ev, line)
        for key, value in ev.items():
            spec = props.get(key)
            if spec is None:
                continue
            if "enum" in spec:
                self.assertIn(value, spec["enum"], line)
            kind = spec.get("type")
            pytype = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
                      "object": dict, "array": list}.get(kind)
            if pytype:
                self.assertIsInstance(value, pytype, "%s in %s" % (key, line))
            if "pattern" in spec:
                self.assertRegex(value, spec["pattern"], line)
        return ev

    def test_schema_lists_every_event_the_code_emits(self):
        emitted = set()
        for path in glob.glob(os.path.join(SRC, "engine", "**", "*.c"), recursive=True) + \
                glob.glob(os.path.join(SRC, "steps", "*.c")):
            for line in read(path).split("\n"):
                if "run_event(" in line:
                    emitted.update(re.findall(r'"([a-z]+(?:-[a-z]+)?)"', line))
                elif "cli_json_event(\"" in line:
                    emitted.update(re.findall(r'cli_json_event\("([a-z-]+)"', line))
                elif re.search(r"step_vemit\(ctx, \"", line):
                    emitted.update(re.findall(r'step_vemit\(ctx, "([a-z-]+)"', line))
        emitted.discard("done")  # the message of step-done, not an event
        self.assertEqual(sorted(emitted), sorted(self.schema["properties"]["event"]["enum"]))
        doc = read(os.path.join(SRC, "docs", "json-output.md"))
        for ev in emitted:
            self.assertIn("`%s`" % ev, doc)

    def test_plan_and_apply_streams_match_the_schema(self):
        wd = Workdir(self)
        plan = wd.plan("""version: 1
name: json
steps:
  - {id: hello, type: exec, command: "echo hello"}
  - {id: fail, type: exec, command: "exit 3"}
""")
        seen = []
        p = run(["plan", "--offline", "--output", "json", plan], check_exit=0)
        seen += [self.check_event(l) for l in p.stdout.splitlines()]
        self.assertEqual([e["event"] for e in seen], ["plan-run", "plan-run", "summary"])
        self.assertEqual((seen[-1]["command"], seen[-1]["exit_code"]), ("plan", 0))
        p = run(["apply", "--output", "json", plan])
        self.assertEqual(p.returncode, 1, p.stderr)
        evs = [self.check_event(l) for l in p.stdout.splitlines()]
        names = [(e["event"], e.get("step")) for e in evs]
        self.assertIn(("step-start", "hello"), names)
        self.assertIn(("step-done", "hello"), names)
        self.assertEqual(names[-2:], [("run-failed", None), ("summary", None)])
        self.assertEqual((evs[-1]["exit_code"], evs[-1]["steps"]), (1, {"done": 1, "failed": 1}))
        p = run(["validate", "--output", "json", plan])
        evs = [self.check_event(l) for l in p.stdout.splitlines()]
        self.assertEqual([e["event"] for e in evs], ["validated", "summary"])
        p = run(["apply", "--output", "json", plan])
        evs = [self.check_event(l) for l in p.stdout.splitlines()]
        self.assertEqual((evs[0]["event"], evs[0]["step"]), ("step-skip", "hello"))

    def test_status_log_verify_streams_match_the_schema(self):
        wd = Workdir(self)
        plan = wd.plan("version: 1\nname: rep\nsteps:\n  - {id: a, type: exec, command: \"echo a\"}\n")
        run(["apply", plan], check_exit=0)
        subprocess.run([sys.executable, os.path.join(SRC, "tests", "archive", "mkarchive.py"), wd.path,
                        "valid_full"], check=True)
        for args, report in ((["status", plan], "status-report"), (["log", plan], "log-report"),
                             (["verify", os.path.join(wd.path, "valid_full.zip")], "verify-report")):
            p = run(args + ["--output", "json"], check_exit=0)
            evs = [self.check_event(l) for l in p.stdout.splitlines()]
            self.assertEqual([e["event"] for e in evs], [report, "summary"], p.stdout)
            self.assertEqual((evs[-1]["command"], evs[-1]["exit_code"]), (args[0], 0))
        self.assertEqual(evs[0]["report"]["error_count"], 0)
        p = run(["status", "--output", "json", plan], check_exit=0)
        evs = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual(evs[0]["report"]["steps"][0]["status"], "done")
        self.assertEqual((evs[-1]["plan"], evs[-1]["steps"]), (plan, {"done": 1}))

    def test_status_dir_stream_matches_the_schema(self):
        wd = Workdir(self)
        wd.plan("version: 1\nname: good\nsteps:\n  - {id: a, type: exec, command: \"echo a\"}\n", "good.yaml")
        bad = wd.plan("version: 1\nname: bad\nsteps:\n  - {id: b, type: exec, command: \"exit 3\"}\n",
                      "sub/bad.yaml")
        wd.plan("version: 1\nname: never\nsteps:\n  - {id: c, type: exec, command: \"true\"}\n", "never.yml")
        run(["apply", os.path.join(wd.path, "good.yaml")], check_exit=0)
        run(["apply", bad], check_exit=1)
        p = run(["status", "--output", "json", wd.path], check_exit=1)
        evs = [self.check_event(l) for l in p.stdout.splitlines()]
        self.assertEqual([e["event"] for e in evs], ["status-plan"] * 3 + ["summary"])
        self.assertEqual([e["result"] for e in evs[:3]], ["done", "never run", "failed"])
        self.assertEqual(evs[2]["failed"], [{"step": "b", "error": "command exited with status 3"}])
        self.assertEqual(evs[-1]["plans"], {"done": 1, "never run": 1, "failed": 1})
        self.assertEqual((evs[-1]["command"], evs[-1]["exit_code"]), ("status", 1))


def block_scalar(text, key):
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)%s:\s*\|" % re.escape(key), line)
        if m:
            body = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= len(m.group(1)):
                    break
                body.append(nxt.strip())
            return "\n".join(body)
    return ""


if __name__ == "__main__":
    unittest.main(verbosity=2)
