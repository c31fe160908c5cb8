"""The engine through the real binary: validate, plan, apply, status,
reset, skip/re-run decisions after edits, kill -9 and resume, locking,
signals. Uses only `exec` steps, so no server is needed."""
import json
import os
import signal
import time
import unittest

import harness
from harness import Workdir, run, start, wait_for, kill9, finish

PLAN = """version: 1
name: eng
steps:
  - id: first
    type: exec
    command: echo one >> {log}; echo out-1
  - id: second
    type: exec
    command: echo two-${{steps.first.stdout}} >> {log}; echo {second_out}
  - id: third
    type: exec
    command: echo three-${{steps.second.stdout}} >> {log}
"""


def plan_text(log, second_out="out-2"):
    return PLAN.format(log=log, second_out=second_out)


class EngineTest(unittest.TestCase):
    def setUp(self):
        self.wd = Workdir(self)
        self.log = os.path.join(self.wd.path, "ran.log")

    def ran(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [l.strip() for l in f]

    def test_validate_ok_and_touches_nothing(self):
        p = self.wd.plan(plan_text(self.log))
        r = run(["validate", p], check_exit=0)
        self.assertIn("ok (3 steps", r.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.wd.path, ".mmigrate")))

    def test_validate_reports_all_errors_with_positions(self):
        p = self.wd.plan("version: 1\nname: bad\nsteps:\n  - {id: a, type: exec, comand: x}\n"
                         "  - {id: a, type: exce}\n")
        r = run(["validate", p], check_exit=2)
        lines = r.stderr.strip().splitlines()
        self.assertIn(p + ":4:5: step 'a' (type exec) needs 'command'", lines)
        self.assertIn(p + ":4:25: unknown key 'comand' in an exec step; did you mean 'command'?", lines)
        self.assertIn(p + ":5:10: duplicate step id 'a' (first at line 4)", lines)
        self.assertIn(p + ":5:19: unknown step type 'exce'; did you mean 'exec'?", lines)
        self.assertFalse(os.path.exists(os.path.join(self.wd.path, ".mmigrate")))

    def test_apply_then_skip_then_rerun_changed_step_and_downstream(self):
        p = self.wd.plan(plan_text(self.log))
        run(["apply", p], check_exit=0)
        self.assertEqual(self.ran(), ["one", "two-out-1", "three-out-2"])
        # Nothing changed: everything skipped.
        r = run(["apply", p], check_exit=0)
        self.assertEqual(self.ran(), ["one", "two-out-1", "three-out-2"])
        self.assertEqual(r.stdout.count("skip ("), 3)
        # plan agrees: nothing to do, exit 0 even with --detailed-exitcode.
        run(["plan", p, "--detailed-exitcode"], check_exit=0)
        # Edit the second step so its output changes: it and the third re-run, the first does not.
        self.wd.plan(plan_text(self.log, second_out="out-2b"))
        r = run(["plan", p, "--detailed-exitcode"], check_exit=4)
        self.assertIn("first          skip", r.stdout)
        self.assertIn("second         run exec (definition changed: command)", r.stdout)
        self.assertIn("third          run after 'second'", r.stdout)
        run(["apply", p], check_exit=0)
        self.assertEqual(self.ran()[3:], ["two-out-1", "three-out-2b"])

    def test_rerun_with_same_outputs_skips_downstream(self):
        p = self.wd.plan(plan_text(self.log))
        run(["apply", p], check_exit=0)
        # A change to the second step that keeps its output the same.
        self.wd.plan(plan_text(self.log).replace("echo two-", "echo  two-"))
        run(["apply", p], check_exit=0)
        self.assertEqual(self.ran()[3:], ["two-out-1"])

    def test_failure_keeps_state_and_resumes(self):
        flag = os.path.join(self.wd.path, "ok")
        p = self.wd.plan("version: 1\nname: eng\nsteps:\n"
                         "  - {id: a, type: exec, command: echo a >> %s}\n"
                         "  - {id: b, type: exec, command: test -e %s}\n"
                         "  - {id: c, type: exec, command: echo c >> %s}\n" % (self.log, flag, self.log))
        r = run(["apply", p], check_exit=1)
        self.assertIn("step 'b'", r.stderr)
        self.assertIn("command exited with status 1", r.stderr)
        self.assertIn("resume with: mmigrate apply", r.stderr)
        st = self.wd.state("eng")
        self.assertEqual(st["steps"]["a"]["status"], "done")
        self.assertEqual(st["steps"]["b"]["status"], "failed")
        self.assertNotIn("c", st["steps"])
        open(flag, "w").close()
        run(["apply", p], check_exit=0)
        self.assertEqual(self.ran(), ["a", "c"])

    def test_kill9_during_long_step_then_resume(self):
        marker = os.path.join(self.wd.path, "started")
        p = self.wd.plan("version: 1\nname: eng\nsteps:\n"
                         "  - {id: a, type: exec, command: echo a >> %s}\n"
                         "  - {id: slow, type: exec, command: touch %s; sleep 30; echo slow >> %s}\n"
                         "  - {id: c, type: exec, command: echo c >> %s}\n"
                         % (self.log, marker, self.log, self.log))
        proc = start(["apply", p])
        wait_for(lambda: os.path.exists(marker), what="slow step to start")
        kill9(proc)
        st = self.wd.state("eng")
        self.assertEqual(st["steps"]["a"]["status"], "done")
        self.assertEqual(st["steps"]["slow"]["status"], "running")
        # The state file is whole JSON (written atomically) and no temp file is left.
        self.assertFalse(os.path.exists(os.path.join(self.wd.state_dir("eng"), "state.json.tmp")))
        # The killed run's lock died with it; the next apply resumes after 'a'.
        with open(p) as f:
            self.wd.plan(f.read().replace("sleep 30", "sleep 0"))
        r = run(["apply", p], check_exit=0)
        self.assertIn("a              skip", r.stdout)
        self.assertEqual(self.ran(), ["a", "slow", "c"])

    def test_sigint_and_sigterm_save_and_exit_130_143(self):
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            marker = os.path.join(self.wd.path, "started-%d" % sig)
            p = self.wd.plan("version: 1\nname: sig%d\nsteps:\n"
                             "  - {id: slow, type: exec, command: touch %s; sleep 30}\n"
                             "  - {id: after, type: exec, command: echo after}\n" % (sig, marker))
            proc = start(["apply", p])
            wait_for(lambda: os.path.exists(marker), what="slow step to start")
            proc.send_signal(sig)
            rc, out, err = finish(proc)
            self.assertEqual(rc, code, err)
            self.assertIn("checkpoint is saved", err)
            self.assertIn("resume with: mmigrate apply " + p, err)
            st = self.wd.state("sig%d" % sig)
            self.assertEqual(st["steps"]["slow"]["status"], "interrupted")
            events = harness.journal_events(self.wd, "sig%d" % sig)
            self.assertEqual(events[-2:], ["step-interrupted", "run-end"])

    def test_two_concurrent_applies(self):
        marker = os.path.join(self.wd.path, "started")
        p = self.wd.plan("version: 1\nname: eng\nsteps:\n"
                         "  - {id: slow, type: exec, command: touch %s; sleep 5}\n" % marker)
        first = start(["apply", p])
        wait_for(lambda: os.path.exists(marker), what="first apply to start")
        r = run(["apply", p], check_exit=3)
        self.assertIn("(pid %d)" % first.pid, r.stderr)
        rc, _, err = finish(first)
        self.assertEqual(rc, 0, err)

    def test_status_json_and_reset_dependents(self):
        p = self.wd.plan(plan_text(self.log))
        run(["apply", p], check_exit=0)
        r = run(["status", p, "--output", "json"], check_exit=0)
        st = harness.json_report(r.stdout, "status-report")["report"]
        self.assertEqual([s["status"] for s in st["steps"]], ["done"] * 3)
        self.assertEqual(st["steps"][0]["outputs"]["stdout"], "out-1")
        r = run(["reset", p, "second"], check_exit=0)
        self.assertIn("forgot second", r.stdout)
        self.assertIn("forgot third", r.stdout)
        self.assertNotIn("forgot first", r.stdout)
        run(["apply", p], check_exit=0)
        self.assertEqual(self.ran()[3:], ["two-out-1", "three-out-2"])
        run(["reset", p, "nope"], check_exit=2)

    def test_json_output_is_one_object_per_line(self):
        p = self.wd.plan(plan_text(self.log))
        r = run(["--output", "json", "apply", p], check_exit=0)
        events = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertTrue(all("event" in e and "time" in e for e in events))
        self.assertIn("step-done", [e["event"] for e in events])

    def test_secret_from_env_never_persisted(self):
        secret = "s3cr3t-value-%d" % os.getpid()
        p = self.wd.plan("version: 1\nname: sec\nservers:\n  src:\n    url: http://127.0.0.1:9\n"
                         "    token: ${env:MM_T_SECRET}\n"
                         "steps:\n  - {id: a, type: exec, command: echo hi}\n")
        r = run(["apply", p], env={"MM_T_SECRET": secret}, check_exit=0)
        for name in ("state.json", "journal.jsonl"):
            with open(os.path.join(self.wd.state_dir("sec"), name)) as f:
                self.assertNotIn(secret, f.read())
        self.assertNotIn(secret, r.stdout + r.stderr)
        mode = os.stat(os.path.join(self.wd.state_dir("sec"), "state.json")).st_mode & 0o777
        self.assertEqual(mode, 0o600)

    def test_usage_errors(self):
        run([], check_exit=2)
        run(["frobnicate"], check_exit=2)
        run(["apply"], check_exit=2)
        run(["--output", "yaml", "status", "x"], check_exit=2)
        self.assertIn("mmigrate", run(["--version"], check_exit=0).stdout)
        self.assertIn("usage:", run(["--help"], check_exit=0).stdout)


if __name__ == "__main__":
    harness.main()
