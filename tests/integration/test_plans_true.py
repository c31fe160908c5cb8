"""Plans that stay true, through the real binary (ASan build in CI):
content-addressed inputs (a changed upstream cascades, identical bytes do
not), failed jobs restarted as new attempts, `always: true` steps after a
failure and after SIGTERM, preflight before any mutating request, done steps
that need no secret, lost create answers for every step that creates
something, several plans per command, and artefacts kept out of git."""
import http.server
import json
import os
import secrets
import signal
import subprocess
import threading
import time
import unittest

import harness
from harness import Workdir, run, start, wait_for, finish
from fakelib import FakeServer, write_bulk_zip

IMPORT_LINES = [
    {"type": "version", "version": 1},
    {"type": "team", "team": {"name": "imported", "display_name": "Imported", "type": "O"}},
    {"type": "channel", "channel": {"team": "imported", "name": "general", "display_name": "General", "type": "O"}},
    {"type": "user", "user": {"username": "zed", "email": "zed@example.com",
                              "teams": [{"name": "imported", "channels": [{"name": "general"}]}]}},
    {"type": "post", "post": {"team": "imported", "channel": "general", "user": "zed",
                              "message": "hello", "create_at": 1705312800000}},
]


def writes(srv, since=0):
    return [(e["method"], e["path"]) for e in srv.log(since) if e["method"] not in ("GET", "HEAD")]


class FileServer:
    """A plain HTTP server over a directory: links for `download: url:`."""

    def __init__(self, root):
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=root, **k)
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        return "http://127.0.0.1:%d/%s" % (self.httpd.server_address[1], name)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


CASCADE = """version: 1
name: cas
steps:
  - {id: dl, type: download, url: "${env:LINK}", path: a.bin%s}
  - {id: gate, type: exec, command: "test ! -e %s # ${steps.dl.sha256}"}
  - {id: use, type: exec, command: "echo used >> %s; cat ${steps.dl.path} >/dev/null"}
"""


class ContentAddressedTest(unittest.TestCase):
    def setUp(self):
        self.wd = Workdir(self)
        self.files = os.path.join(self.wd.path, "srv")
        os.makedirs(self.files)
        self.fs = FileServer(self.files)
        self.addCleanup(self.fs.stop)
        self.used = os.path.join(self.wd.path, "used.log")
        self.block = os.path.join(self.wd.path, "block")
        self.data = secrets.token_bytes(4096)
        for name, data in (("a.bin", self.data), ("same.bin", self.data), ("other.bin", secrets.token_bytes(4096))):
            with open(os.path.join(self.files, name), "wb") as f:
                f.write(data)

    def uses(self):
        if not os.path.exists(self.used):
            return 0
        with open(self.used) as f:
            return f.read().count("used")

    def test_changed_bytes_cascade_identical_bytes_do_not(self):
        p = self.wd.plan(CASCADE % ("", self.block, self.used))
        run(["apply", p], env={"LINK": self.fs.url("a.bin")}, check_exit=0)
        self.assertEqual(self.uses(), 1)
        # A new link to the same bytes: the download runs again, its consumer does not.
        r = run(["apply", p], env={"LINK": self.fs.url("same.bin")}, check_exit=0)
        self.assertRegex(r.stdout, r"dl +run download")
        self.assertRegex(r.stdout, r"use +skip \(done")
        self.assertEqual(self.uses(), 1)
        # Different bytes: the consumer re-runs, and says why. A failing step in
        # between leaves it stale for status to explain first.
        open(self.block, "w").close()
        r = run(["apply", p], env={"LINK": self.fs.url("other.bin")}, check_exit=1)
        r = run(["status", p], check_exit=0)
        self.assertRegex(r.stdout, r"stale: input steps\.dl\.path changed: sha256 [0-9a-f]{4}… → [0-9a-f]{4}…")
        os.unlink(self.block)
        r = run(["plan", p], env={"LINK": self.fs.url("other.bin")}, check_exit=0)
        self.assertRegex(r.stdout, r"use +run exec \(input steps\.dl\.path changed: sha256 [0-9a-f]{4}… → [0-9a-f]{4}…")
        run(["apply", p], env={"LINK": self.fs.url("other.bin")}, check_exit=0)
        self.assertEqual(self.uses(), 2)
        st = self.wd.state("cas")["steps"]["use"]
        self.assertIn("steps.dl.path", st["inputs"])
        self.assertEqual(set(st["inputs"]["steps.dl.path"]), {"size", "sha256"})

    def test_done_step_needs_no_secret_and_sha256_identifies_a_download(self):
        import hashlib
        sha = hashlib.sha256(self.data).hexdigest()
        p = self.wd.plan(CASCADE % (", sha256: " + sha, self.block, self.used))
        run(["apply", p], env={"LINK": self.fs.url("a.bin")}, check_exit=0)
        # The link expired and its variable is gone: nothing needs it.
        for cmd in ("plan", "apply"):
            r = run([cmd, p], check_exit=0)
            self.assertRegex(r.stdout, r"dl +skip \(done, definition unchanged; its secrets were not needed\)")
        # A new link to the same bytes is no change at all.
        r = run(["apply", p], env={"LINK": self.fs.url("same.bin")}, check_exit=0)
        self.assertRegex(r.stdout, r"dl +skip")
        self.assertEqual(self.uses(), 1)


HEAD = """version: 1
name: {name}
servers:
  mm: {{url: "{url}", token: "${{env:MM_TOKEN}}"}}
steps:
"""


class FakeCase(unittest.TestCase):
    fake = {"seed": "small"}

    def setUp(self):
        self.srv = FakeServer(job_pending_seconds=0, job_run_seconds=0.2, **self.fake).start()
        self.addCleanup(self.srv.stop)
        self.wd = Workdir(self)
        self.env = {"MM_TOKEN": self.srv.admin_token}

    def plan(self, steps, name="p"):
        return self.wd.plan(HEAD.format(name=name, url=self.srv.url) + steps)

    def jobs(self, kind):
        return [j for j in self.srv.control("GET", "jobs") if j["type"] == kind]

    def cfg(self, section, key):
        return self.srv.control("GET", "config")[section][key]


class JobRetryTest(FakeCase):
    def test_failed_export_then_apply_starts_attempt_2(self):
        self.srv.faults(job_fail={"type": "export_process", "error": "disk full"})
        p = self.plan("  - {id: export, type: export, server: mm, poll_interval: 1s}\n")
        r = run(["apply", p], env=self.env, check_exit=1)
        self.assertIn("ended 'error': disk full; the next apply starts a new export (attempt 2 of 3)", r.stderr)
        self.assertIn("resume with: mmigrate apply " + p, r.stderr)
        failed = self.jobs("export_process")[0]["id"]
        r = run(["plan", p], env=self.env, check_exit=0)
        self.assertIn("failed last time", r.stdout)
        r = run(["apply", p], env=self.env, check_exit=0)
        self.assertIn("export job %s failed: export_process job %s ended 'error': disk full; "
                      "starting a new export (attempt 2 of 3)" % (failed, failed), r.stdout)
        self.assertEqual([j["status"] for j in self.jobs("export_process")], ["error", "success"])
        rec = self.wd.state("p")["steps"]["export"]
        self.assertEqual(rec["attempts"], 2)
        self.assertEqual(len(rec["attempts_log"]), 1)
        r = run(["status", p], check_exit=0)
        self.assertIn("attempts: 2", r.stdout)
        self.assertIn("disk full", r.stdout)

    def test_retry_before_72_finds_the_new_file_not_the_failed_one(self):
        srv = FakeServer(seed="small", version="7.1.0", job_pending_seconds=0, job_run_seconds=0.2).start()
        self.addCleanup(srv.stop)
        srv.faults(job_fail={"type": "export_process", "error": "disk full"})
        p = self.wd.plan(HEAD.format(name="old", url=srv.url)
                         + "  - {id: export, type: export, server: mm, poll_interval: 1s}\n")
        env = {"MM_TOKEN": srv.admin_token}
        run(["apply", p], env=env, check_exit=1)
        run(["apply", p], env=env, check_exit=0)
        names = [f["name"] for f in srv.files()["exports"]]
        self.assertEqual(len(names), 2)  # the failed job's truncated file, and ours
        self.assertIn(self.wd.state("old")["steps"]["export"]["outputs"]["file"], names)

    def test_max_attempts_names_the_step_to_reset(self):
        self.srv.faults(job_fail={"type": "export_process", "error": "disk full"})
        p = self.plan("  - {id: export, type: export, server: mm, poll_interval: 1s, max_attempts: 1}\n")
        r = run(["apply", p], env=self.env, check_exit=1)
        self.assertIn("that was attempt 1 of 1 (max_attempts)", r.stderr)
        self.assertIn("mmigrate reset %s export" % p, r.stderr)
        self.assertNotIn("resume with", r.stderr)
        r = run(["apply", p], env=self.env, check_exit=1)
        self.assertIn("max_attempts is 1", r.stderr)
        self.assertEqual(len(self.jobs("export_process")), 1)
        run(["reset", p, "export"], check_exit=0)
        run(["apply", p], env=self.env, check_exit=0)
        self.assertEqual(len(self.jobs("export_process")), 2)


RAISE_IMPORT = """  - {id: raise, type: config, server: mm, set: ["FileSettings.MaxFileSize=%s"]}
  - {id: upload, type: upload, server: mm, file: archive.zip, unverified: true}
  - {id: import, type: process, server: mm, file: "${steps.upload.name}", poll_interval: 1s}
  - {id: restore, type: config, server: mm, restore: raise, always: true}
"""


class AlwaysTest(FakeCase):
    fake = {"seed": "none"}

    def archive(self):
        write_bulk_zip(os.path.join(self.wd.path, "archive.zip"), IMPORT_LINES)

    def test_failed_import_restores_then_fixed_config_completes(self):
        self.archive()
        original = self.cfg("FileSettings", "MaxFileSize")
        self.srv.faults(job_fail={"type": "import_process", "error": "bad line"})
        p = self.plan(RAISE_IMPORT % "200MiB")
        r = run(["apply", p], env=self.env, check_exit=1)
        self.assertIn("bad line; the next apply starts a new import (attempt 2 of 3)", r.stderr)
        self.assertRegex(r.stdout, r"restore +run config .* after a failure")
        self.assertEqual(self.cfg("FileSettings", "MaxFileSize"), original)
        self.assertEqual(self.wd.state("p")["steps"]["raise"]["status"], "reverted")
        # The config is fixed in the plan; the next apply raises again, imports, restores.
        p = self.plan(RAISE_IMPORT % "300MiB")
        r = run(["apply", p], env=self.env, check_exit=0)
        self.assertRegex(r.stdout, r"raise +run config")
        self.assertIn("starting a new import (attempt 2 of 3)", r.stdout)
        self.assertRegex(r.stdout, r"restore +run config")
        self.assertEqual([j["status"] for j in self.jobs("import_process")], ["error", "success"])
        self.assertEqual(self.cfg("FileSettings", "MaxFileSize"), original)
        self.assertEqual(self.srv.model()["counts"]["posts"], 1)
        # Everything done: the always step is skipped too.
        r = run(["apply", p], env=self.env, check_exit=0)
        self.assertRegex(r.stdout, r"restore +skip")

    def test_restore_runs_after_sigterm(self):
        marker = os.path.join(self.wd.path, "started")
        p = self.plan("""  - {id: raise, type: config, server: mm, set: ["FileSettings.MaxFileSize=200MiB"]}
  - {id: slow, type: exec, command: "touch %s; sleep 30"}
  - {id: after, type: exec, command: "echo never"}
  - {id: restore, type: config, server: mm, restore: raise, always: true}
""" % marker)
        original = self.cfg("FileSettings", "MaxFileSize")
        proc = start(["apply", p], env=self.env)
        wait_for(lambda: os.path.exists(marker), what="the slow step")
        self.assertEqual(self.cfg("FileSettings", "MaxFileSize"), 200 * 1024 * 1024)
        proc.send_signal(signal.SIGTERM)
        rc, out, err = finish(proc)
        self.assertEqual(rc, 143, out + err)
        self.assertRegex(out, r"restore +run config .* after a stop signal")
        self.assertNotIn("after          run", out)
        self.assertEqual(self.cfg("FileSettings", "MaxFileSize"), original)
        st = self.wd.state("p")["steps"]
        self.assertEqual(st["slow"]["status"], "interrupted")
        self.assertEqual(st["restore"]["status"], "done")
        self.assertEqual(st["raise"]["status"], "reverted")

    def test_kill9_is_caught_up_by_the_next_apply(self):
        marker = os.path.join(self.wd.path, "started")
        steps = """  - {id: raise, type: config, server: mm, set: ["FileSettings.MaxFileSize=200MiB"]}
  - {id: slow, type: exec, command: "touch %s; sleep %d"}
  - {id: restore, type: config, server: mm, restore: raise, always: true}
"""
        original = self.cfg("FileSettings", "MaxFileSize")
        p = self.plan(steps % (marker, 5))  # short: the orphaned sleep holds the output pipe
        proc = start(["apply", p], env=self.env)
        wait_for(lambda: os.path.exists(marker), what="the slow step")
        harness.kill9(proc)
        self.assertEqual(self.cfg("FileSettings", "MaxFileSize"), 200 * 1024 * 1024)
        p = self.plan(steps % (marker, 0))
        r = run(["apply", p], env=self.env, check_exit=0)
        self.assertRegex(r.stdout, r"raise +skip")
        self.assertRegex(r.stdout, r"restore +run config")
        self.assertEqual(self.cfg("FileSettings", "MaxFileSize"), original)

    def test_always_must_be_a_bool(self):
        p = self.plan("  - {id: a, type: exec, command: 'true', always: maybe}\n")
        r = run(["validate", p], check_exit=2)
        self.assertIn("'always' must be true or false", r.stderr)


class NextActionTest(FakeCase):
    def test_export_deleted_by_cleanup_names_the_export_to_reset(self):
        p = self.plan("""  - {id: export, type: export, server: mm, poll_interval: 1s}
  - {id: download, type: download, server: mm, export: "${steps.export.file}"}
  - {id: cleanup, type: cleanup, server: mm, export: "${steps.export.file}", always: true}
""")
        self.srv.faults(errors={"path": "^/api/v4/exports/.*zip$", "method": "GET", "status": 403, "count": -1})
        r = run(["apply", p], env=self.env, check_exit=1)
        self.assertRegex(r.stdout, r"cleanup +run cleanup .* after a failure")
        self.assertEqual(self.srv.files()["exports"], [])
        self.srv.clear_faults()
        r = run(["apply", p], env=self.env, check_exit=1)
        self.assertIn("no such export", r.stderr)
        self.assertIn("step 'export' must start over: mmigrate reset %s export, then mmigrate apply %s" % (p, p),
                      r.stderr)
        self.assertNotIn("resume with", r.stderr)
        run(["reset", p, "export"], check_exit=0)
        run(["apply", p], env=self.env, check_exit=0)
        self.assertEqual(len(self.jobs("export_process")), 2)


class PreflightTest(FakeCase):
    fake = {"seed": "none", "max_file_size": 2000}

    def test_every_problem_before_any_write(self):
        write_bulk_zip(os.path.join(self.wd.path, "archive.zip"), IMPORT_LINES,
                       files={"data/pad.bin": secrets.token_bytes(8000)})
        p = self.plan("""  - {id: notify, type: exec, command: "echo ${env:NEW_SMTP_PASSWORD} >/dev/null"}
  - {id: upload, type: upload, server: mm, file: archive.zip, unverified: true}
  - {id: import, type: process, server: mm, file: "${steps.upload.name}"}
""")
        env = dict(self.env, MMIGRATE_TEST_FREE_BYTES="1000")
        for cmd in ("plan", "apply"):
            self.srv.reset_log()
            t0 = time.monotonic()
            r = run([cmd, p], env=env, check_exit=1)
            self.assertLess(time.monotonic() - t0, 15)
            self.assertIn("NEW_SMTP_PASSWORD", r.stderr)
            self.assertIn("has 1000 bytes free", r.stderr)
            self.assertRegex(r.stderr, r"archive\.zip' is 8\.\d KiB, but server 'mm' accepts uploads up to 2\.0 KiB \(FileSettings\.MaxFileSize\)")
            self.assertIn("preflight found 3 problem(s)", r.stderr)
            self.assertEqual(writes(self.srv), [])
        self.assertIn("fix what is described above, then run: mmigrate apply", r.stderr)

    def test_an_earlier_config_step_counts(self):
        write_bulk_zip(os.path.join(self.wd.path, "archive.zip"), IMPORT_LINES,
                       files={"data/pad.bin": secrets.token_bytes(8000)})
        p = self.plan(RAISE_IMPORT % "1MiB")
        self.srv.reset_log()
        r = run(["plan", p], env=self.env, check_exit=0)
        self.assertNotIn("preflight", r.stderr)
        p = self.plan(RAISE_IMPORT % "3000")
        r = run(["apply", p], env=self.env, check_exit=1)
        self.assertIn("as step 'raise' sets it", r.stderr)
        self.assertEqual(writes(self.srv), [])


class LostAnswerTest(unittest.TestCase):
    """The server creates the job or upload session, the answer never arrives:
    every creating step adopts what it made, once, under ASan."""

    def test_export_upload_import_extract(self):
        src = FakeServer(seed="small", job_pending_seconds=0, job_run_seconds=0.3).start()
        self.addCleanup(src.stop)
        dst = FakeServer(seed="none", job_pending_seconds=0, job_run_seconds=0.3).start()
        self.addCleanup(dst.stop)
        wd = Workdir(self)
        p = wd.plan("""version: 1
name: lost
servers:
  source: {url: "%s", token: "${env:SRC_TOKEN}"}
  target: {url: "%s", token: "${env:DST_TOKEN}"}
steps:
  - {id: export, type: export, server: source, poll_interval: 1s}
  - {id: download, type: download, server: source, export: "${steps.export.file}"}
  - {id: upload, type: upload, server: target, file: "${steps.download.path}"}
  - {id: import, type: process, server: target, file: "${steps.upload.name}", poll_interval: 1s}
  - {id: extract, type: extract, server: target, from: 2020-01-01, poll_interval: 1s}
""" % (src.url, dst.url))
        src.faults(lose_response={"path": "^/api/v4/jobs$", "method": "POST", "count": 1})
        dst.faults(lose_response=[{"path": "^/api/v4/jobs$", "method": "POST", "count": 2},
                                  {"path": "^/api/v4/uploads$", "method": "POST", "count": 1}])
        r = run(["apply", p], env={"SRC_TOKEN": src.admin_token, "DST_TOKEN": dst.admin_token}, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("AddressSanitizer", r.stderr)
        for srv, kind in ((src, "export_process"), (dst, "import_process"), (dst, "extract_content")):
            self.assertEqual(len([j for j in srv.control("GET", "jobs") if j["type"] == kind]), 1, kind)
        self.assertEqual(r.stdout.count("adopting"), 3, r.stdout)
        self.assertIn("was created although the answer was lost", r.stdout)
        creates = [e for e in dst.log() if e["method"] == "POST" and e["path"] == "/api/v4/uploads"]
        self.assertEqual(len(creates), 1)


class MultiPlanTest(unittest.TestCase):
    def setUp(self):
        self.wd = Workdir(self)
        ok = "version: 1\nname: %s\nsteps:\n  - {id: a, type: exec, command: 'true'}\n"
        self.a = self.wd.plan(ok % "a", "plans/a.yaml")
        self.b = self.wd.plan(ok % "b", "plans/b.yml")
        self.bad = self.wd.plan("version: 1\nname: bad\nsteps:\n  - {id: a, type: exce}\n", "other/bad.yaml")

    def test_validate_reports_each(self):
        r = run(["validate", self.a, self.bad, self.b], check_exit=2)
        self.assertIn(self.a + ": ok", r.stdout)
        self.assertIn(self.b + ": ok", r.stdout)
        self.assertIn(self.bad + ":4:19: unknown step type 'exce'", r.stderr)
        r = run(["validate", os.path.dirname(self.a)], check_exit=0)
        self.assertEqual(r.stdout.count(": ok"), 2)

    def test_plan_and_status_take_several(self):
        r = run(["plan", os.path.dirname(self.a)], check_exit=0)
        self.assertIn("==> %s <==" % self.a, r.stdout)
        self.assertIn("==> %s <==" % self.b, r.stdout)
        run(["apply", self.a], check_exit=0)
        r = run(["status", self.a, self.b], check_exit=0)
        self.assertEqual(r.stdout.count("==> "), 2)
        self.assertRegex(r.stdout, r"a +exec +done")
        self.assertRegex(r.stdout, r"a +exec +pending")

    def test_no_argument_is_ignored(self):
        r = run(["apply", self.a, self.b], check_exit=2)
        self.assertIn("'apply' takes one plan", r.stderr)
        r = run(["log", self.a, self.b], check_exit=2)
        r = run(["validate", self.a, os.path.join(self.wd.path, "empty")], check_exit=2)
        self.assertIn(self.a + ": ok", r.stdout)
        r = run(["plan", self.a, self.b, "--state-dir", self.wd.path], check_exit=2)
        self.assertIn("--state-dir names the state of one plan", r.stderr)


class ArtefactTest(unittest.TestCase):
    def test_validate_refuses_an_archive_git_would_commit(self):
        wd = Workdir(self)
        subprocess.run(["git", "init", "-q", wd.path], check=True)
        wd.write(".gitignore", ".mmigrate/\n")
        plan = """version: 1
name: art
steps:
  - {id: dl, type: download, url: "${env:LINK}", path: %s}
"""
        p = wd.plan(plan % "archive.zip")
        r = run(["validate", p], check_exit=0)
        p = wd.plan(plan % os.path.join(wd.path, "archive.zip"))
        r = run(["validate", p], check_exit=2)
        self.assertIn("inside the git work tree", r.stderr)
        self.assertIn("where git would commit it", r.stderr)
        wd.write(".gitignore", ".mmigrate/\n*.zip\n")
        run(["validate", p], check_exit=0)


if __name__ == "__main__":
    harness.main()
