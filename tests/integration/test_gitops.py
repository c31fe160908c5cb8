"""Plans under version control, through the binary: provenance recorded in
state.json and the journal, dirty plans refused unless --allow-dirty, --rev
on a tag and a commit, drift shown by status, and `log`."""
import json
import os
import subprocess
import unittest

import harness
from harness import Workdir, run

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": "/dev/null",
           "GIT_CONFIG_NOSYSTEM": "1"}

PLAN = """version: 1
name: ops
steps:
  - {id: a, type: exec, command: echo %s}
  - {id: b, type: exec, command: echo b}
"""


class GitopsTest(unittest.TestCase):
    def setUp(self):
        self.wd = Workdir(self)
        self.repo = self.wd.path
        self.git("init", "-q", "-b", "main")
        self.plan = self.wd.write("plans/ops.yaml", PLAN % "one")
        self.wd.write(".gitignore", ".mmigrate/\n")
        self.git("add", ".")
        self.git("commit", "-q", "-m", "first")

    def git(self, *args):
        env = dict(os.environ)
        env.update(GIT_ENV)
        return subprocess.run(["git", "-C", self.repo] + list(args), env=env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def state(self):
        with open(os.path.join(self.repo, "plans", ".mmigrate", "ops", "state.json")) as f:
            return json.load(f)

    def journal(self):
        with open(os.path.join(self.repo, "plans", ".mmigrate", "ops", "journal.jsonl")) as f:
            return [json.loads(l) for l in f]

    def test_clean_plan_records_provenance(self):
        run(["apply", self.plan], check_exit=0)
        prov = self.state()["provenance"]
        self.assertEqual(prov["commit"], self.git("rev-parse", "HEAD"))
        self.assertEqual(prov["blob"], self.git("rev-parse", "HEAD:plans/ops.yaml"))
        self.assertEqual(prov["path"], "plans/ops.yaml")
        self.assertEqual(prov["branch"], "main")
        self.assertFalse(prov["dirty"])
        self.assertEqual(self.state()["steps"]["a"]["revision"]["commit"], prov["commit"])
        start = [e for e in self.journal() if e["event"] == "run-start"][0]
        self.assertEqual(start["details"]["provenance"]["commit"], prov["commit"])

    def test_dirty_plan_refused_unless_allowed(self):
        self.wd.write("plans/ops.yaml", PLAN % "two")
        r = run(["apply", self.plan], check_exit=2)
        self.assertIn(self.plan + " has uncommitted changes", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.repo, "plans", ".mmigrate")))
        run(["apply", self.plan, "--allow-dirty"], check_exit=0)
        self.assertTrue(self.state()["allow_dirty"])
        self.assertTrue(self.state()["provenance"]["dirty"])

    def test_rev_on_tag_and_commit(self):
        first = self.git("rev-parse", "HEAD")
        self.git("tag", "v1")
        self.wd.write("plans/ops.yaml", PLAN % "two")
        self.git("commit", "-q", "-am", "second")
        r = run(["plan", "--rev", "v1", self.plan], check_exit=0)
        self.assertIn("would run `echo one`", r.stdout)
        run(["apply", "--rev", first[:10], self.plan], check_exit=0)
        prov = self.state()["provenance"]
        self.assertEqual(prov["commit"], first)
        self.assertEqual(prov["rev"], first[:10])
        self.assertEqual(self.state()["steps"]["a"]["outputs"]["stdout"], "one")
        r = run(["apply", "--rev", "no-such-rev", self.plan], check_exit=2)
        self.assertIn("no-such-rev", r.stderr)

    def test_status_shows_revision_and_drift(self):
        run(["apply", self.plan], check_exit=0)
        self.wd.write("plans/ops.yaml", PLAN % "two")
        self.git("commit", "-q", "-am", "edit a")
        r = run(["status", self.plan], check_exit=0)
        self.assertIn("drift: the definition changed since that revision: command", r.stdout)
        st = harness.json_report(run(["status", "--output", "json", self.plan], check_exit=0).stdout,
                                 "status-report")["report"]
        drift = {s["id"]: s.get("drift") for s in st["steps"]}
        self.assertEqual(drift, {"a": "command", "b": None})

    def test_detached_head_and_log(self):
        self.git("checkout", "-q", "--detach")
        run(["apply", self.plan], check_exit=0)
        prov = self.state()["provenance"]
        self.assertTrue(prov["detached"])
        self.assertIsNone(prov["branch"])
        r = run(["log", self.plan], check_exit=0)
        self.assertIn("success", r.stdout)
        self.assertIn(prov["commit"][:12], r.stdout)
        runs = harness.json_report(run(["log", "--output", "json", self.plan], check_exit=0).stdout,
                                   "log-report")["runs"]
        self.assertEqual(runs[0]["steps_done"], 2)

    def test_repo_without_commits(self):
        bare = Workdir(self)
        subprocess.run(["git", "-C", bare.path, "init", "-q"], check=True)
        p = bare.plan(PLAN % "x")
        r = run(["apply", p], check_exit=2)
        self.assertIn("has uncommitted changes", r.stderr)
        run(["apply", "--allow-dirty", p], check_exit=0)
        with open(os.path.join(bare.path, ".mmigrate", "ops", "state.json")) as f:
            prov = json.load(f)["provenance"]
        self.assertTrue(prov["unborn"])
        self.assertIsNone(prov["commit"])

    def test_plan_outside_a_repo(self):
        other = Workdir(self)
        p = other.plan(PLAN % "x")
        run(["apply", p], check_exit=0)
        with open(os.path.join(other.path, ".mmigrate", "ops", "state.json")) as f:
            self.assertEqual(json.load(f)["provenance"], {"in_repo": False})


if __name__ == "__main__":
    harness.main()
