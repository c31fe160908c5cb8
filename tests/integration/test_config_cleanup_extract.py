"""config, cleanup and extract steps through the real binary against
tests/fake/mmfake.py: settings raised and put back (checked through the
fake's own view of its config), secrets never written, a write the server
silently ignores, kill -9 between the checkpoint and the patch; export and
local-file cleanup, idempotent; extraction jobs that succeed and fail; and
`mmigrate plan` sending nothing but GETs."""
import json
import os
import tempfile
import shutil
import unittest

import harness
from harness import Workdir, run, start, kill9, wait_for, finish
from fakelib import FakeServer

HEAD = """version: 1
name: {name}
servers:
  mm:
    url: {url}
    token: ${{env:MM_TOKEN}}
steps:
"""

ORIGINAL_MAX = 104857600
GIB10 = 10 * 1024 ** 3


class FakeCase(unittest.TestCase):
    """One fake server and one work directory per test."""

    fake_options = {}

    def setUp(self):
        self.srv = FakeServer(job_pending_seconds=0, job_run_seconds=0.2, **self.fake_options).start()
        self.addCleanup(self.srv.stop)
        self.wd = Workdir(self)
        self.env = {"MM_TOKEN": self.srv.admin_token}

    def plan(self, steps, name="p"):
        return self.wd.plan(HEAD.format(name=name, url=self.srv.url) + steps)

    def mm(self, *args, want=0):
        return run(list(args), env=self.env, check_exit=want)

    def cfg(self, section, key):
        return self.srv.control("GET", "config")[section][key]

    def writes(self, since=0):
        return [(e["method"], e["path"], e["status"]) for e in self.srv.log(since)
                if e["method"] not in ("GET", "HEAD")]

    def outputs(self, step, name="p"):
        return self.wd.state(name)["steps"][step].get("outputs")


RAISE = """  - id: raise
    type: config
    server: mm
    set:
      - FileSettings.MaxFileSize=10GiB
      - ServiceSettings.ReadTimeout=1200
      - FileSettings.EnableFileAttachments=true
      - TeamSettings.SiteName=Migrating
"""
RESTORE = """  - {id: lower, type: config, server: mm, restore: raise}
"""


class ConfigTest(FakeCase):
    def test_raise_then_restore(self):
        p = self.plan(RAISE)
        r = self.mm("apply", p)
        self.assertEqual(self.cfg("FileSettings", "MaxFileSize"), GIB10)
        self.assertEqual(self.cfg("ServiceSettings", "ReadTimeout"), 1200)
        self.assertEqual(self.cfg("TeamSettings", "SiteName"), "Migrating")
        self.assertIn("FileSettings.EnableFileAttachments is already true", r.stdout)
        out = self.outputs("raise")
        self.assertEqual(out["changed"], "FileSettings.MaxFileSize,ServiceSettings.ReadTimeout,TeamSettings.SiteName")
        self.assertEqual(json.loads(out["previous"]), {"FileSettings.MaxFileSize": ORIGINAL_MAX,
                                                       "ServiceSettings.ReadTimeout": 300,
                                                       "TeamSettings.SiteName": "Mattermost"})
        # One patch, then a read-back.
        self.assertEqual([w[:2] for w in self.writes()], [("PUT", "/api/v4/config/patch")])

        # The import happens; then a restore step is added: raise is skipped, its values go back.
        p = self.plan(RAISE + RESTORE)
        mark = len(self.srv.log())
        r = self.mm("apply", p)
        self.assertIn("raise          skip", r.stdout)
        self.assertEqual(self.cfg("FileSettings", "MaxFileSize"), ORIGINAL_MAX)
        self.assertEqual(self.cfg("ServiceSettings", "ReadTimeout"), 300)
        self.assertEqual(self.cfg("TeamSettings", "SiteName"), "Mattermost")
        self.assertTrue(self.cfg("FileSettings", "EnableFileAttachments"))
        self.assertEqual(self.outputs("lower")["changed"],
                         "FileSettings.MaxFileSize,ServiceSettings.ReadTimeout,TeamSettings.SiteName")
        self.assertEqual(len(self.writes(mark)), 1)

        # Nothing left to do: no writes at all.
        mark = len(self.srv.log())
        self.mm("apply", p)
        self.assertEqual(self.writes(mark), [])

    def test_restore_of_nothing_changed(self):
        p = self.plan("""  - {id: raise, type: config, server: mm, set: [FileSettings.EnableFileAttachments=true]}
""" + RESTORE)
        r = self.mm("apply", p)
        self.assertIn("nothing to put back", r.stdout)
        self.assertEqual(self.outputs("raise"), {"changed": "", "previous": "{}"})
        self.assertEqual(self.writes(), [])

    def test_secret_is_never_written(self):
        secret = "n3w-smtp-Pa55word"
        self.env["NEW_SMTP"] = secret
        p = self.plan("""  - id: raise
    type: config
    server: mm
    set: ["EmailSettings.SMTPPassword=${env:NEW_SMTP}", "LdapSettings.BindPassword=********************************"]
""")
        for cmd in ("validate", "apply"):
            r = self.mm(cmd, p, want=2)
            self.assertIn("'EmailSettings.SMTPPassword' is a secret", r.stderr)
            self.assertIn("'LdapSettings.BindPassword' is a secret", r.stderr)
            harness.assert_no_secret(self, secret, r.stdout, r.stderr)
        self.assertEqual(self.writes(), [])
        self.assertEqual(self.srv.control("GET", "config")["EmailSettings"]["SMTPPassword"], "smtp-secret")
        self.assertFalse(os.path.exists(self.wd.state_dir("p")))

    def test_secret_mask_never_sent_back_and_not_shown(self):
        # Settings that merely sit beside secrets: the dry run and the log show only what is set.
        p = self.plan("""  - {id: raise, type: config, server: mm, set: [EmailSettings.SMTPServer=mail.example]}
""")
        r = self.mm("plan", p)
        self.assertIn('EmailSettings.SMTPServer "localhost" -> "mail.example"', r.stdout)
        r2 = self.mm("apply", p)
        for text in (r.stdout, r.stderr, r2.stdout, r2.stderr, json.dumps(self.wd.state("p")),
                     json.dumps(self.wd.journal("p"))):
            self.assertNotIn("*" * 32, text)
            self.assertNotIn("smtp-secret", text)
        self.assertEqual(self.srv.control("GET", "config")["EmailSettings"]["SMTPPassword"], "smtp-secret")

    def test_unknown_setting_and_bad_value(self):
        p = self.plan("""  - {id: a, type: config, server: mm, set: [TeamSettings.MaxUsersPerTem=5]}
""", name="a")
        r = self.mm("apply", p, want=1)
        self.assertIn("'TeamSettings.MaxUsersPerTem' is not in the server's configuration", r.stderr)
        p = self.plan("""  - {id: b, type: config, server: mm, set: [TeamSettings.MaxUsersPerTeam=lots]}
""", name="b")
        r = self.mm("apply", p, want=1)
        self.assertIn("'TeamSettings.MaxUsersPerTeam' is a number on this server", r.stderr)
        p = self.plan("""  - {id: c, type: config, server: mm, set: [ImportSettings.Directory=/tmp/x]}
  - {id: d, type: config, server: mm, restore: d-was-here}
  - {id: e, type: exec, command: "true"}
  - {id: f, type: config, server: mm, restore: e}
""", name="c")
        r = self.mm("validate", p, want=2)
        self.assertIn("'ImportSettings.Directory' cannot be changed through the API", r.stderr)
        self.assertIn("reference to unknown step 'd-was-here'", r.stderr)
        self.assertIn("'restore' names step 'e' (type exec); it takes a config step", r.stderr)
        self.assertEqual(self.writes(), [])

    def test_setting_that_does_not_stick(self):
        # RestrictSystemAdmin makes the server ignore writes to restricted settings
        # with a 200, as Cloud does.
        self.srv.config(ExperimentalSettings={"RestrictSystemAdmin": True})
        p = self.plan(RAISE)
        r = self.mm("apply", p, want=1)
        self.assertIn("did not keep 2 of 4 setting(s)", r.stderr)
        self.assertIn("'FileSettings.MaxFileSize' is 104857600, not 10737418240", r.stderr)
        self.assertIn("'ServiceSettings.ReadTimeout' is 300, not 1200", r.stderr)
        self.assertEqual(self.cfg("FileSettings", "MaxFileSize"), ORIGINAL_MAX)
        self.assertEqual(self.cfg("TeamSettings", "SiteName"), "Migrating")  # not restricted: it stuck
        rec = self.wd.state("p")["steps"]["raise"]
        self.assertEqual(rec["status"], "failed")
        self.assertEqual(rec["checkpoint"]["previous"]["TeamSettings.SiteName"], "Mattermost")

        # Once the restriction is lifted, the rerun finishes and still knows the true old values.
        self.srv.config(ExperimentalSettings={"RestrictSystemAdmin": False})
        self.mm("apply", p)
        self.assertEqual(self.cfg("FileSettings", "MaxFileSize"), GIB10)
        self.assertEqual(json.loads(self.outputs("raise")["previous"])["TeamSettings.SiteName"], "Mattermost")

    def kill_during_patch(self, p):
        """Starts apply, kills -9 it while its PUT /config/patch is held by the fake,
        and waits until the fake has applied that orphaned patch."""
        self.srv.faults(delay={"method": "PUT", "path": "^/api/v4/config/patch$", "seconds": 2})
        proc = start(["apply", p], env=self.env)
        wait_for(lambda: not self.srv.control("GET", "faults")["delay"], timeout=30, what="PUT /config/patch")
        # The checkpoint was committed before the PUT was sent.
        prev = self.wd.state("p")["steps"]["raise"]["checkpoint"]["previous"]
        self.assertEqual(prev["FileSettings.MaxFileSize"], ORIGINAL_MAX)
        kill9(proc)
        wait_for(lambda: self.cfg("FileSettings", "MaxFileSize") == GIB10, timeout=30, what="the held patch")

    def test_kill9_after_checkpoint_patch_landed(self):
        p = self.plan(RAISE + RESTORE)
        self.kill_during_patch(p)
        mark = len(self.srv.log())
        r = self.mm("apply", p)
        self.assertIn("resume config", r.stdout)
        # The server already holds the new values: the rerun patches only the restore.
        self.assertEqual(len(self.writes(mark)), 1)
        self.assertEqual(json.loads(self.outputs("raise")["previous"])["FileSettings.MaxFileSize"], ORIGINAL_MAX)
        self.assertEqual(self.cfg("FileSettings", "MaxFileSize"), ORIGINAL_MAX)
        self.assertEqual(self.cfg("TeamSettings", "SiteName"), "Mattermost")

    def test_kill9_after_checkpoint_patch_lost(self):
        p = self.plan(RAISE)
        self.kill_during_patch(p)
        # As if the patch never reached the server.
        self.srv.config(FileSettings={"MaxFileSize": ORIGINAL_MAX}, ServiceSettings={"ReadTimeout": 300},
                        TeamSettings={"SiteName": "Mattermost"})
        mark = len(self.srv.log())
        self.mm("apply", p)
        self.assertEqual([w[:2] for w in self.writes(mark)], [("PUT", "/api/v4/config/patch")])
        self.assertEqual(self.cfg("FileSettings", "MaxFileSize"), GIB10)
        self.assertEqual(json.loads(self.outputs("raise")["previous"])["ServiceSettings.ReadTimeout"], 300)


class CleanupTest(FakeCase):
    def test_export_and_local_files_idempotent(self):
        _, name = self.srv.export()
        self.assertIn(name, [f["name"] for f in self.srv.files()["exports"]])
        self.wd.write("art/archive.zip", "zip")
        self.wd.write("art/archive.zip.part", "part")
        self.wd.write(".mmigrate/p/download.zip", "in the state dir")
        p = self.plan("""  - id: clean
    type: cleanup
    server: mm
    export: %s
    local: [art/archive.zip, art/archive.zip.part, art/never-there.zip, .mmigrate/p/download.zip]
""" % name)
        r = self.mm("apply", p)
        self.assertIn((("DELETE", "/api/v4/exports/" + name, 200)), self.writes())
        self.assertEqual(self.srv.files()["exports"], [])
        for f in ("art/archive.zip", "art/archive.zip.part", ".mmigrate/p/download.zip"):
            self.assertFalse(os.path.exists(os.path.join(self.wd.path, f)), f)
        self.assertIn("'art/never-there.zip' is already gone", r.stdout)
        self.assertEqual(self.outputs("clean")["deleted"],
                         name + ",art/archive.zip,art/archive.zip.part,art/never-there.zip,.mmigrate/p/download.zip")

        # Forget the step and run it again: everything is gone already, and that is fine.
        self.mm("reset", p, "clean")
        mark = len(self.srv.log())
        self.mm("apply", p)
        self.assertEqual(self.writes(mark), [("DELETE", "/api/v4/exports/" + name, 200)])

    def test_import_delete_unsupported_is_a_warning(self):
        p = self.plan("""  - {id: clean, type: cleanup, server: mm, import: abc_archive.zip}
""")
        r = self.mm("apply", p)  # the fake emulates 9.11.2: no DELETE /imports route
        self.assertIn("unsupported on this server", r.stdout)
        self.assertEqual(self.writes(), [("DELETE", "/api/v4/imports/abc_archive.zip", 404)])
        self.assertEqual(self.outputs("clean")["deleted"], "")

    def test_refuses_paths_outside_the_plan_and_state(self):
        outside = tempfile.mkdtemp(prefix="mmigrate-outside-")
        self.addCleanup(shutil.rmtree, outside, True)
        victim = os.path.join(outside, "keep.txt")
        with open(victim, "w") as f:
            f.write("keep")
        os.symlink(outside, os.path.join(self.wd.path, "link"))
        entries = ["../%s/keep.txt" % os.path.basename(outside), "link/keep.txt", ".mmigrate/p2/state.json", "art"]
        for i, entry in enumerate(entries):
            os.makedirs(os.path.join(self.wd.path, "art"), exist_ok=True)
            p = self.plan("  - {id: clean, type: cleanup, local: [\"%s\"]}\n" % entry, name="p%d" % i)
            r = self.mm("apply", p, want=1)
            self.assertRegex(r.stderr, "outside the plan's directory|mmigrate's own state|is a directory")
            self.assertTrue(os.path.exists(victim))
        self.assertTrue(os.path.exists(os.path.join(self.wd.path, ".mmigrate/p2/state.json")))
        p = self.plan("  - {id: clean, type: cleanup, local: [\"/\", \"\", \"%s\"]}\n" % victim, name="v")
        r = self.mm("validate", p, want=2)
        self.assertIn("'local' entry '/' does not name a file", r.stderr)
        self.assertIn("'local' entry '' does not name a file", r.stderr)
        self.assertIn("is outside the plan's directory", r.stderr)


class ExtractTest(FakeCase):
    fake_options = {"seed": "small"}

    def extract_jobs(self):
        return [j for j in self.srv.control("GET", "jobs") if j["type"] == "extract_content"]

    def test_extract_success_and_rerun(self):
        p = self.plan("""  - {id: extract, type: extract, server: mm, from: 2024-01-01, poll_interval: 1s}
""")
        self.mm("apply", p)
        jobs = self.extract_jobs()
        self.assertEqual(len(jobs), 1)
        self.assertEqual(jobs[0]["data"]["from"], "1704067200")
        to = int(jobs[0]["data"]["to"])
        out = self.outputs("extract")
        self.assertEqual(out["job_id"], jobs[0]["id"])
        self.assertEqual(out["errors"], "0")
        self.assertGreater(int(out["processed"]), 0)
        self.assertLess(abs(to - jobs[0]["create_at"] // 1000), 60)
        # Done: a second apply starts nothing.
        self.mm("apply", p)
        self.assertEqual(len(self.extract_jobs()), 1)

    def test_failing_job_then_retry_keeps_the_range(self):
        self.srv.faults(job_fail={"type": "extract_content", "error": "Injected extraction failure."})
        p = self.plan("""  - {id: extract, type: extract, server: mm, to: "2024-02-01T00:00:00+01:00", poll_interval: 1s}
""")
        r = self.mm("apply", p, want=1)
        self.assertIn("Injected extraction failure.", r.stderr)
        self.assertIn("the next apply starts a new extraction (attempt 2 of 3)", r.stderr)
        ck = self.wd.state("p")["steps"]["extract"]["checkpoint"]
        self.assertNotIn("job_id", ck)
        self.assertEqual(ck["to"], "1706742000")
        self.mm("apply", p)
        jobs = self.extract_jobs()
        self.assertEqual([j["status"] for j in jobs], ["error", "success"])
        self.assertEqual({j["data"]["to"] for j in jobs}, {"1706742000"})
        self.assertEqual({j["data"]["from"] for j in jobs}, {"0"})

    def test_default_to_survives_a_kill(self):
        self.srv.faults(jobs_stay_pending=True)
        p = self.plan("""  - {id: extract, type: extract, server: mm, poll_interval: 1s}
""")
        proc = start(["apply", p], env=self.env)
        wait_for(lambda: self.wd.state("p")["steps"]["extract"]["checkpoint"]["job_id"], timeout=30,
                 what="the job id in the checkpoint")
        to = self.wd.state("p")["steps"]["extract"]["checkpoint"]["to"]
        kill9(proc)
        self.srv.faults(jobs_stay_pending=False)
        self.mm("apply", p)
        jobs = self.extract_jobs()
        self.assertEqual(len(jobs), 1)
        self.assertEqual(jobs[0]["data"]["to"], to)


class DryRunTest(FakeCase):
    def test_plan_sends_only_gets(self):
        _, name = self.srv.export()
        self.wd.write("art/a.zip", "zip")
        p = self.plan(RAISE + """  - {id: extract, type: extract, server: mm, from: 2024-01-01}
  - {id: clean, type: cleanup, server: mm, export: %s, import: x_y.zip, local: [art/a.zip]}
""" % name + RESTORE)
        self.srv.reset_log()
        r = self.mm("plan", p)
        self.assertIn("FileSettings.MaxFileSize 104857600 -> 10737418240", r.stdout)
        self.assertRegex(r.stdout, r"would create an? extract_content job for 2024-01-01T00:00:00Z \.\. now")
        self.assertIn("would delete export '%s' on server 'mm' (present)" % name, r.stdout)
        self.assertIn("would delete 'art/a.zip' (3 bytes)", r.stdout)
        self.assertIn("lower          run after 'raise'", r.stdout)
        log = self.srv.log()
        self.assertTrue(log)
        self.assertEqual({e["method"] for e in log}, {"GET"})
        self.assertTrue(os.path.exists(os.path.join(self.wd.path, "art/a.zip")))
        self.assertEqual(self.cfg("FileSettings", "MaxFileSize"), ORIGINAL_MAX)


if __name__ == "__main__":
    harness.main()
