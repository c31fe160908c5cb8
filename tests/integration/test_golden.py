"""Golden output: what people read, compared line for line with the files in
tests/integration/golden/. Covers `plan --offline`, `status` of one plan and
of a directory of plans in every state (done, failed, never run, running, a
run killed mid-step, an invalid plan), and the common errors.

Timestamps, durations, pids, ports, temporary paths, run ids, commits and
the version are masked by normalise(). After an intended change of output:

    MMIGRATE_UPDATE_GOLDEN=1 ctest -R integration/test_golden

rewrites the files; review them with `git diff` before committing. Without
it, a difference fails the test with a unified diff.
"""
import difflib
import os
import re
import signal
import unittest

import harness
from harness import Workdir, run, start, wait_for

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
UPDATE = os.environ.get("MMIGRATE_UPDATE_GOLDEN") == "1"

MASKS = [
    (re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"), "<TIME>"),
    (re.compile(r"\bpid \d+"), "pid <PID>"),
    (re.compile(r"\b(127\.0\.0\.1|localhost):\d+"), r"\1:<PORT>"),
    (re.compile(r"\bmmigrate \d+\.\d+\.\d+\S*"), "mmigrate <VERSION>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<RUN>"),
    (re.compile(r"\b[0-9a-f]{12}(?:[0-9a-f]{28})?\b"), "<COMMIT>"),
    (re.compile(r"\b\d+(?:\.\d+)?(?: ?ms|s)\b"), "<DUR>"),
]


def normalise(text, workdir):
    """The output with what changes from run to run masked."""
    text = text.replace(os.path.realpath(workdir), "<WORK>").replace(workdir, "<WORK>")
    for rx, repl in MASKS:
        text = rx.sub(repl, text)
    return text


PLAN_OK = """version: 1
name: {name}
steps:
  - {{id: first, type: exec, command: echo one}}
  - {{id: second, type: exec, command: "echo two-${{steps.first.stdout}}"}}
"""

PLAN_FAILS = """version: 1
name: broken
steps:
  - {id: fetch, type: exec, command: echo fetched}
  - {id: load, type: exec, command: "echo 'no such table' >&2; exit 3"}
  - {id: after, type: exec, command: echo never}
"""

PLAN_SLOW = """version: 1
name: {name}
steps:
  - {{id: quick, type: exec, command: echo quick}}
  - {{id: slow, type: exec, command: "echo $$ > {marker}.tmp; mv {marker}.tmp {marker}; exec sleep 60"}}
  - {{id: last, type: exec, command: echo last}}
"""

PLAN_INVALID = """version: 1
name: bad
steps:
  - {id: a, type: exec, comand: echo a}
  - {id: b, type: exce, command: echo b}
"""


class GoldenTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.wd = Workdir(self)
        self.procs = []
        self.addCleanup(self.stop_all)

    def stop_all(self):
        for proc, marker in self.procs:
            if proc.poll() is None:
                self.kill_run(proc, marker)

    @staticmethod
    def kill_run(proc, marker):
        """SIGKILL to mmigrate (nothing saved: its step stays running), then to the step's
        sleep, which would otherwise hold the output pipes open for a minute."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        with open(marker) as f:
            try:
                os.kill(int(f.read()), signal.SIGKILL)
            except (ValueError, ProcessLookupError):
                pass
        out, err = proc.communicate(timeout=30)
        harness.check_no_canary(out + err, "output of a killed mmigrate")

    def check(self, name, args, want_exit, cwd=None):
        """Runs mmigrate args in cwd (the workdir) and compares its output with golden/NAME.txt."""
        cwd = cwd or self.wd.path
        r = run(args, cwd=cwd)
        got = "$ mmigrate %s\nexit %d\n--- stdout\n%s--- stderr\n%s" % (
            " ".join(args), r.returncode, r.stdout, r.stderr)
        got = normalise(got, self.wd.path)
        path = os.path.join(GOLDEN, name + ".txt")
        if UPDATE:
            os.makedirs(GOLDEN, exist_ok=True)
            with open(path, "w") as f:
                f.write(got)
        with open(path) as f:
            want = f.read()
        if got != want:
            diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                                "golden/%s.txt" % name, "actual"))
            self.fail("output of mmigrate %s differs from golden/%s.txt "
                      "(MMIGRATE_UPDATE_GOLDEN=1 rewrites it):\n%s" % (" ".join(args), name, diff))
        self.assertEqual(r.returncode, want_exit, got)

    def slow_plan(self, name):
        """Starts apply on a plan whose second step sleeps; returns the process once that step runs."""
        marker = os.path.join(self.wd.path, "started-" + name)
        p = self.wd.plan(PLAN_SLOW.format(name=name, marker=marker), "plans/%s.yaml" % name)
        proc = start(["apply", p])
        self.procs.append((proc, marker))
        wait_for(lambda: os.path.exists(marker), what="the slow step of %s to start" % name)
        return proc, marker

    def test_plan_offline(self):
        self.wd.plan(PLAN_OK.format(name="ok"), "plans/ok.yaml")
        self.check("plan-offline-fresh", ["plan", "--offline", "plans/ok.yaml"], 0)
        run(["apply", "plans/ok.yaml"], cwd=self.wd.path, check_exit=0)
        self.check("plan-offline-done", ["plan", "--offline", "plans/ok.yaml"], 0)

    def test_status_one_plan(self):
        self.wd.plan(PLAN_FAILS, "plans/broken.yaml")
        run(["apply", "plans/broken.yaml"], cwd=self.wd.path, check_exit=1)
        self.check("status-one-failed", ["status", "plans/broken.yaml"], 0)

    def test_status_one_plan_killed(self):
        self.kill_run(*self.slow_plan("killed"))
        self.check("status-one-killed", ["status", "plans/killed.yaml"], 0)

    def test_status_dir(self):
        self.wd.plan(PLAN_OK.format(name="done"), "plans/done.yaml")
        self.wd.plan(PLAN_FAILS, "plans/failed.yaml")
        self.wd.plan(PLAN_OK.format(name="never"), "plans/sub/never.yml")
        self.wd.plan(PLAN_INVALID, "plans/sub/invalid.yaml")
        self.wd.write("plans/notes.txt", "not a plan\n")
        run(["apply", "plans/done.yaml"], cwd=self.wd.path, check_exit=0)
        run(["apply", "plans/failed.yaml"], cwd=self.wd.path, check_exit=1)
        self.kill_run(*self.slow_plan("stale"))  # dies while 'slow' is running: the lock's pid is gone
        running = self.slow_plan("running")
        self.check("status-dir", ["status", "plans"], 2)
        os.unlink(os.path.join(self.wd.path, "plans/sub/invalid.yaml"))
        self.check("status-dir-valid", ["status", "plans/"], 1)
        self.kill_run(*running)

    def test_status_dir_reused_pid(self):
        """The lock file of a killed run names a pid that lives again (here this
        test's own): the lock is not held, so the run is still stale."""
        self.kill_run(*self.slow_plan("reused"))
        with open(os.path.join(self.wd.path, "plans/.mmigrate/reused/lock"), "w") as f:
            f.write("%d\n" % os.getpid())
        r = run(["status", "plans"], cwd=self.wd.path, check_exit=1)
        self.assertRegex(r.stdout, r"plans/reused\.yaml +stale .*pid %d gone" % os.getpid())

    def test_status_dir_all_fine(self):
        self.wd.plan(PLAN_OK.format(name="done"), "plans/done.yaml")
        self.wd.plan(PLAN_OK.format(name="never"), "plans/never.yaml")
        run(["apply", "plans/done.yaml"], cwd=self.wd.path, check_exit=0)
        self.check("status-dir-fine", ["status", "plans"], 0)

    def test_errors(self):
        self.wd.plan(PLAN_INVALID, "bad.yaml")
        self.wd.plan("version: 1\nname: t\nsteps:\n  - {id: a, type: exce, command: echo a}\n", "typo.yaml")
        self.check("error-invalid-plan", ["validate", "bad.yaml"], 2)
        self.check("error-unknown-step-type", ["apply", "typo.yaml"], 2)
        self.check("error-missing-file", ["status", "missing.yaml"], 2)
        self.check("error-unknown-command", ["aply", "bad.yaml"], 2)
        self.check("error-unknown-option", ["status", "--frob", "bad.yaml"], 2)
        os.makedirs(os.path.join(self.wd.path, "plans"))
        self.check("error-directory-for-one-plan", ["log", "plans"], 2)
        self.wd.plan("version: 1\nname: s\nsteps:\n  - [unclosed\n", "syntax.yaml")
        self.check("error-yaml-syntax", ["validate", "syntax.yaml"], 2)

    def test_locked_plan(self):
        running = self.slow_plan("locked")
        self.check("error-locked", ["apply", "plans/locked.yaml"], 3)
        self.kill_run(*running)

    def test_normaliser(self):
        masked = normalise("at 2026-12-02T13:48:55Z pid 4711 on 127.0.0.1:38211 took 1.5s, 40 ms, "
                           "mmigrate 0.1.0 run 0123456789abcdef0123456789abcdef at b8e93f86694d in /w/x",
                           "/w")
        self.assertEqual(masked, "at <TIME> pid <PID> on 127.0.0.1:<PORT> took <DUR>, <DUR>, "
                                 "mmigrate <VERSION> run <RUN> at <COMMIT> in <WORK>/x")


if __name__ == "__main__":
    harness.main()
