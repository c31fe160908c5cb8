"""upload and process steps against the fake server (tests/fake/mmfake.py).

Every interruption is real: kill -9 of the binary at chosen points (before and
after each checkpoint write, mid-transfer, after completion), connections the
fake cuts mid-body or answers never sent, 429/503 bursts, expired sessions,
failing and stalling import jobs. What counts is what the fake saw: exactly one
upload session and one import job per migration, the uploaded bytes identical
to the local file (SHA-256), and no POST/PUT/DELETE while `plan` runs.
"""
import hashlib
import json
import os
import re
import secrets
import signal
import tempfile
import time
import unittest

import harness
from harness import Workdir, run, start, wait_for, kill9, finish
from fakelib import FakeServer, write_bulk_zip

MIB = 1024 * 1024
ARCHIVE = None  # (path, size, sha256), built once


def setUpModule():
    """An import archive above 5 MiB: valid JSONL plus 8 MiB of incompressible
    attachment bytes, so a 1 MiB chunk size means 5 MiB + 3 x 1 MiB requests."""
    global ARCHIVE
    d = tempfile.mkdtemp(prefix="mmigrate-upload-")
    path = os.path.join(d, "archive.zip")
    lines = [
        {"type": "version", "version": 1},
        {"type": "team", "team": {"name": "imported", "display_name": "Imported", "type": "O"}},
        {"type": "channel", "channel": {"team": "imported", "name": "general", "display_name": "General",
                                        "type": "O"}},
        {"type": "user", "user": {"username": "zed", "email": "zed@example.com",
                                  "teams": [{"name": "imported", "channels": [{"name": "general"}]}]}},
        {"type": "post", "post": {"team": "imported", "channel": "general", "user": "zed",
                                  "message": "hello from the archive", "create_at": 1705312800000,
                                  "attachments": [{"path": "blob.bin"}]}},
        {"type": "post", "post": {"team": "imported", "channel": "general", "user": "zed",
                                  "message": "second", "create_at": 1705312801000}},
    ]
    write_bulk_zip(path, lines, files={"data/blob.bin": secrets.token_bytes(8 * MIB)})
    ARCHIVE = (path, os.path.getsize(path), sha256_file(path))


def tearDownModule():
    if ARCHIVE:
        os.unlink(ARCHIVE[0])
        os.rmdir(os.path.dirname(ARCHIVE[0]))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


UPLOAD = """  - id: upload
    type: upload
    server: target
    file: {file}
    chunk_size: 1MiB
    unverified: true
"""

PROCESS = """  - id: import
    type: process
    server: target
    file: "${{steps.upload.name}}"
    poll_interval: 1s
{extra}"""


def plan_text(srv, file, process=False, password=False, process_extra=""):
    creds = ("    username: ${env:MMT_USER}\n    password: ${env:MMT_PASSWORD}\n" if password
             else "    token: ${env:MMT_TOKEN}\n")
    text = "version: 1\nname: mig\nservers:\n  target:\n    url: %s\n%ssteps:\n" % (srv.url, creds)
    text += UPLOAD.format(file=file)
    if process:
        text += PROCESS.format(extra=process_extra)
    return text


class Case(unittest.TestCase):
    fake_options = {}

    def setUp(self):
        self.wd = Workdir(self)
        self.srv = FakeServer(job_pending_seconds=0, job_run_seconds=0.2, **self.fake_options)
        self.srv.start()
        self.addCleanup(self.srv.stop)
        self.file = os.path.join(self.wd.path, "archive.zip")
        with open(ARCHIVE[0], "rb") as src, open(self.file, "wb") as dst:
            dst.write(src.read())
        self.env = {"MMT_TOKEN": self.srv.admin_token}
        self.outputs = []

    # -- running ---------------------------------------------------------------
    def write_plan(self, **kw):
        self.plan = self.wd.plan(plan_text(self.srv, self.file, **kw))
        return self.plan

    def mm(self, *args, code=None):
        p = run(list(args), env=self.env, check_exit=code)
        self.outputs += [p.stdout, p.stderr]
        return p

    def apply(self, code=0):
        return self.mm("apply", self.plan, code=code)

    def start_apply(self):
        return start(["apply", self.plan], env=self.env)

    def kill(self, proc):
        kill9(proc)

    def dry_run(self, *extra):
        """`plan` must send GET requests only; returns its output."""
        seq = self.last_seq()
        p = self.mm("plan", self.plan, *extra)
        self.assertIn(p.returncode, (0, 4), p.stderr)
        writes = [e for e in self.srv.log(since=seq) if e["method"] not in ("GET", "HEAD")]
        self.assertEqual(writes, [], "plan sent non-GET requests")
        return p.stdout + p.stderr

    # -- state -------------------------------------------------------------------
    def state(self):
        return self.wd.state("mig")

    def ckpt(self, step="upload"):
        return self.state()["steps"].get(step, {}).get("checkpoint") or {}

    def step_rec(self, step):
        return self.state()["steps"][step]

    # -- what the fake saw ---------------------------------------------------------
    def settle(self, quiet=0.6):
        """Waits until the fake has finished with whatever a dead run left in flight."""
        last = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = (self.last_seq(), json.dumps(self.srv.control("GET", "uploads")))
            if now == last:
                return
            last = now
            time.sleep(quiet)

    def last_seq(self):
        log = self.srv.log()
        return log[-1]["seq"] if log else 0

    def requests(self, method, pattern):
        return [e for e in self.srv.log() if e["method"] == method and re.search(pattern, e["path"])]

    def sessions_created(self):
        """POST /uploads the server handled (an injected refusal is not one)."""
        return [e for e in self.requests("POST", r"^/api/v4/uploads$") if e.get("fault") != "error"
                and e.get("status") not in (400, 413, 503, 429)]

    def jobs_created(self):
        return [j for j in self.srv.control("GET", "jobs") if j["type"] == "import_process"]

    def server_file(self, name):
        return os.path.join(self.srv.dir, "state", "data", "import", name)

    def assert_one_clean_upload(self):
        """One session, completed, byte-identical to the local file."""
        self.assertEqual(len(self.sessions_created()), 1, self.sessions_created())
        self.assertEqual(self.srv.control("GET", "uploads"), [], "an upload session was left open")
        out = self.step_rec("upload")["outputs"]
        self.assertEqual(out["size"], ARCHIVE[1])
        self.assertEqual(out["sha256"], ARCHIVE[2])
        self.assertEqual(out["name"], out["upload_id"] + "_archive.zip")
        files = [f["name"] for f in self.srv.files()["imports"]]
        self.assertEqual(files, [out["name"]], "stray or incomplete files in the import directory")
        self.assertEqual(sha256_file(self.server_file(out["name"])), ARCHIVE[2])
        for e in self.requests("POST", r"^/api/v4/uploads/"):
            self.assertNotIn("transfer_encoding", e["headers"])
            self.assertLessEqual(int(e["headers"]["content_length"]), 5 * MIB)
        return out

    def assert_no_secrets(self, *secret_values):
        sd = self.wd.state_dir("mig")
        texts = list(self.outputs)
        for name in ("state.json", "journal.jsonl"):
            with open(os.path.join(sd, name)) as f:
                texts.append(f.read())
        for s in secret_values:
            for t in texts:
                self.assertNotIn(s, t)


class UploadTest(Case):
    def test_upload_then_import_once_and_skip_after(self):
        self.write_plan(process=True)
        before = self.dry_run()
        self.assertIn("would create an import upload session for 'archive.zip' (%d bytes" % ARCHIVE[1], before)
        sizes = [5 * MIB] + [MIB] * ((ARCHIVE[1] - 5 * MIB - 1) // MIB)
        sizes.append(ARCHIVE[1] - sum(sizes))
        self.assertIn("in %d request(s)" % len(sizes), before)
        self.assertIn("run after 'upload'", before)
        p = self.apply()
        out = self.step_rec("upload")["outputs"]
        # The first chunk is 5 MiB (the server's minimum), the rest chunk_size.
        chunks = self.requests("POST", r"^/api/v4/uploads/")
        self.assertEqual([int(e["headers"]["content_length"]) for e in chunks], sizes)
        self.assertEqual([e["status"] for e in chunks], [204] * (len(sizes) - 1) + [200])
        self.assertEqual(len(self.sessions_created()), 1)
        # The name was checked in /imports before the job was created with string data.
        jobs = self.jobs_created()
        self.assertEqual(len(jobs), 1)
        self.assertEqual(jobs[0]["data"]["import_file"], out["name"])
        self.assertEqual(jobs[0]["data"]["local_mode"], "false")
        self.assertEqual(jobs[0]["data"]["extract_content"], "false")
        self.assertEqual(jobs[0]["status"], "success")
        self.assertEqual(self.step_rec("import")["outputs"]["job_id"], jobs[0]["id"])
        self.assertIn("imported", [t["name"] for t in self.srv.model()["teams"]])
        self.assertIn(out["name"], p.stdout + p.stderr)
        # Again: both steps skipped, nothing sent but GETs.
        seq = self.last_seq()
        p = self.apply()
        self.assertEqual(p.stdout.count("skip ("), 2)
        self.assertEqual([e for e in self.srv.log(since=seq) if e["method"] != "GET"], [])
        self.assertIn("0 of 2 steps would do something", self.dry_run())
        self.assert_no_secrets(self.srv.admin_token)

    def test_offline_plan_sends_nothing(self):
        self.write_plan(process=True)
        seq = self.last_seq()
        p = self.mm("plan", self.plan, "--offline")
        self.assertEqual(self.srv.log(since=seq), [])
        self.assertIn("would create an import upload session", p.stdout)

    def test_wrong_expected_sha256_refuses(self):
        self.wd.plan(plan_text(self.srv, self.file) + "    sha256: %s\n" % ("0" * 64))
        self.plan = os.path.join(self.wd.path, "plan.yaml")
        p = self.apply(code=1)
        self.assertIn("but the step expects " + "0" * 64, p.stderr)
        self.assertEqual(self.requests("POST", r"^/api/v4/uploads"), [])


class KillTest(Case):
    """kill -9 at each point of the protocol, then resume with the same plan."""

    def resume_and_check(self):
        self.srv.clear_faults()
        self.apply()
        return self.assert_one_clean_upload()

    def test_kill_between_creating_checkpoint_and_post(self):
        # Refused POSTs keep the run in its backoff right after the "creating" checkpoint.
        self.srv.faults(errors={"path": r"^/api/v4/uploads$", "method": "POST", "status": 503, "count": 6})
        self.write_plan()
        proc = self.start_apply()
        wait_for(lambda: len(self.requests("POST", r"^/api/v4/uploads$")) >= 2, what="refused POSTs")
        self.kill(proc)
        self.assertEqual(self.ckpt()["phase"], "creating")
        self.assertEqual(self.srv.control("GET", "uploads"), [])
        self.assertIn("would create an import upload session", self.dry_run())
        self.resume_and_check()

    def test_kill_after_post_before_session_checkpoint(self):
        # The server creates the session after we died: only "creating" is recorded.
        self.srv.faults(delay={"path": r"^/api/v4/uploads$", "method": "POST", "seconds": 1.5})
        self.write_plan()
        proc = self.start_apply()
        wait_for(lambda: self.ckpt().get("phase") == "creating", what="creating checkpoint")
        time.sleep(0.4)  # the POST is at the server, sleeping
        self.kill(proc)
        wait_for(lambda: self.srv.control("GET", "uploads"), what="the orphan session")
        orphan = self.srv.control("GET", "uploads")[0]["id"]
        self.assertNotIn("upload_id", self.ckpt())
        self.assertIn("would adopt upload session %s" % orphan, self.dry_run())
        out = self.resume_and_check()
        self.assertEqual(out["upload_id"], orphan)

    def test_kill_after_session_checkpoint_before_first_chunk(self):
        self.srv.faults(delay={"path": r"^/api/v4/uploads/", "method": "POST", "seconds": 2})
        self.write_plan()
        proc = self.start_apply()
        wait_for(lambda: "upload_id" in self.ckpt(), what="session checkpoint")
        # A session this run created is not asked its offset: the first chunk follows at once.
        time.sleep(0.5)  # the first chunk is at the server, held by the delay
        self.kill(proc)
        sid = self.ckpt()["upload_id"]
        # The fake handles the dead request after its delay: a first chunk cut short is dropped.
        wait_for(lambda: self.requests("POST", r"^/api/v4/uploads/"), what="the dead chunk")
        held = self.srv.control("GET", "uploads")[0]["file_offset"]
        self.assertIn(held, (0, 5 * MIB))
        self.assertIn("would resume upload session %s at byte %d of %d" % (sid, held, ARCHIVE[1]),
                      self.dry_run())
        self.assertEqual(self.resume_and_check()["upload_id"], sid)

    def test_kill_mid_transfer_then_resume_from_server_offset(self):
        self.srv.faults(upload_bps=3 * MIB)
        self.write_plan()
        proc = self.start_apply()
        wait_for(lambda: self.ckpt().get("offset", 0) >= 5 * MIB, what="first chunk stored")
        time.sleep(0.15)  # in the middle of the next 1 MiB chunk
        self.kill(proc)
        sid = self.ckpt()["upload_id"]
        # The fake keeps whatever part of the chunk reached it before the connection died.
        wait_for(lambda: len(self.requests("POST", r"^/api/v4/uploads/")) >= 2, what="the dead chunk")
        self.settle()
        held = self.srv.control("GET", "uploads")[0]["file_offset"]
        self.assertGreaterEqual(held, 5 * MIB)
        self.assertIn("would resume upload session %s at byte %d" % (sid, held), self.dry_run())
        seq = self.last_seq()
        self.resume_and_check()
        first = self.requests("POST", r"^/api/v4/uploads/")
        first = [e for e in first if e["seq"] > seq][0]
        self.assertEqual(int(first["headers"]["content_length"]), min(MIB, ARCHIVE[1] - held))

    def test_kill_after_completion_before_step_is_recorded(self):
        # GET /imports follows the final chunk: hold it and kill the run there.
        self.srv.faults(delay={"path": r"^/api/v4/imports$", "method": "GET", "seconds": 3})
        self.write_plan()
        proc = self.start_apply()
        wait_for(lambda: any(e["status"] == 200 for e in self.requests("POST", r"^/api/v4/uploads/")),
                 what="final chunk")
        self.kill(proc)
        self.assertEqual(self.step_rec("upload")["status"], "running")
        self.assertIn("completed; would confirm", self.dry_run())
        chunks = len(self.requests("POST", r"^/api/v4/uploads/"))
        self.resume_and_check()
        self.assertEqual(len(self.requests("POST", r"^/api/v4/uploads/")), chunks, "bytes sent again")

    def test_sigterm_mid_transfer_saves_and_resumes(self):
        self.srv.faults(upload_bps=3 * MIB)
        self.write_plan()
        proc = self.start_apply()
        wait_for(lambda: self.ckpt().get("offset", 0) >= 5 * MIB, what="first chunk stored")
        proc.send_signal(signal.SIGTERM)
        code, out, err = finish(proc)
        self.outputs += [out, err]
        self.assertEqual(code, 143, err)
        self.assertEqual(self.step_rec("upload")["status"], "interrupted")
        self.settle()
        self.resume_and_check()

    def test_changed_local_file_is_refused_until_reset(self):
        self.srv.faults(upload_bps=3 * MIB)
        self.write_plan()
        proc = self.start_apply()
        wait_for(lambda: self.ckpt().get("offset", 0) >= 5 * MIB, what="first chunk stored")
        self.kill(proc)
        self.settle()
        with open(self.file, "r+b") as f:  # same size, different bytes
            f.seek(ARCHIVE[1] - 100)
            b = f.read(1)
            f.seek(ARCHIVE[1] - 100)
            f.write(bytes([b[0] ^ 0xFF]))
        self.srv.clear_faults()
        p = self.apply(code=1)
        self.assertIn("changed since upload session %s was started" % self.ckpt()["upload_id"], p.stderr)
        self.assertIn("mmigrate reset", p.stderr)
        self.assertIn("would fail: '%s' changed since upload session" % self.file, self.dry_run())
        self.mm("reset", self.plan, "upload", code=0)
        self.apply()
        self.assertEqual(len(self.sessions_created()), 2)  # a reset asks for a new one
        out = self.step_rec("upload")["outputs"]
        self.assertEqual(sha256_file(self.server_file(out["name"])), sha256_file(self.file))


class FlakyNetworkTest(Case):
    def test_cut_bodies_lost_answers_and_errors_after_storing(self):
        self.srv.faults(upload_bps=4 * MIB)
        self.write_plan()
        proc = self.start_apply()
        wait_for(lambda: self.ckpt().get("offset", 0) >= 5 * MIB, what="first chunk stored")
        # Every trap of section 5.4 once, on the chunks after the first.
        self.srv.faults(upload_bps=0, upload_cut={"after_bytes": 300000, "count": 2},
                        lose_response={"path": r"^/api/v4/uploads/", "method": "POST", "count": 1},
                        errors={"path": r"^/api/v4/uploads/", "method": "POST", "status": 500,
                                "phase": "after", "count": 1})
        code, out, err = finish(proc)
        self.outputs += [out, err]
        self.assertEqual(code, 0, err)
        outcomes = [e.get("outcome") for e in self.requests("POST", r"^/api/v4/uploads/")]
        self.assertEqual(outcomes.count("upload_cut"), 2, outcomes)
        self.assertEqual(outcomes.count("response_lost"), 1, outcomes)
        self.assert_one_clean_upload()

    def test_lost_answer_to_session_creation_is_adopted(self):
        self.srv.faults(lose_response={"path": r"^/api/v4/uploads$", "method": "POST"})
        self.write_plan()
        p = self.apply()
        self.assertIn("was created although the answer was lost", p.stdout + p.stderr)
        self.assertEqual([e["outcome"] for e in self.requests("POST", r"^/api/v4/uploads$")], ["response_lost"])
        self.assert_one_clean_upload()

    def test_429_and_503_bursts(self):
        self.srv.faults(errors=[
            {"path": r"^/api/v4/uploads", "status": 429, "retry_after": 1, "count": 2},
            {"path": r"^/api/v4/uploads", "status": 503, "count": 3},
            {"path": r"^/api/v4/(imports|jobs)", "status": 503, "count": 2},
            {"path": r"^/api/v4/jobs", "status": 429, "retry_after": 1, "count": 1},
        ])
        self.write_plan(process=True)
        self.apply()
        self.assertEqual(len(self.sessions_created()), 1)
        self.assertEqual(len(self.jobs_created()), 1)
        self.assertEqual(self.jobs_created()[0]["status"], "success")
        self.assertEqual(self.srv.control("GET", "faults")["errors"], [], "a burst was not reached")

    def test_session_expiry_mid_upload_logs_in_again(self):
        password = self.srv.credentials["admin"]["password"]
        self.env = {"MMT_USER": "admin", "MMT_PASSWORD": password}
        self.srv.faults(upload_bps=3 * MIB)
        self.write_plan(password=True)
        proc = self.start_apply()
        wait_for(lambda: self.ckpt().get("offset", 0) >= 5 * MIB, what="first chunk stored")
        self.srv.faults(upload_bps=0, expire_sessions=True)
        code, out, err = finish(proc)
        self.outputs += [out, err]
        self.assertEqual(code, 0, err)
        self.assertEqual(len(self.requests("POST", r"^/api/v4/users/login$")), 2)
        self.assertTrue(any(e["status"] == 401 for e in self.srv.log()))
        self.assertIn("logging in again", err + out)
        self.assert_one_clean_upload()
        self.assert_no_secrets(password, self.srv.admin_token)


class RefusalTest(Case):
    def test_cloud_refuses_import_uploads(self):
        self.srv.stop()
        self.srv = FakeServer(job_pending_seconds=0, cloud=True).start()
        self.addCleanup(self.srv.stop)
        self.env = {"MMT_TOKEN": self.srv.admin_token}
        self.write_plan()
        p = self.apply(code=1)
        self.assertIn("Mattermost Cloud", p.stderr)
        self.assertIn("api.file.cloud_upload.app_error", p.stderr)
        self.assertIn("Mattermost Support", p.stderr)
        self.assertEqual(self.srv.control("GET", "uploads"), [])

    def test_max_file_size_413_then_raised(self):
        self.srv.config(FileSettings={"MaxFileSize": 4 * MIB})
        self.write_plan()
        # Preflight (plan and apply): refused before any upload request, GETs only.
        seq = self.last_seq()
        p = self.mm("plan", self.plan, code=1)
        self.assertIn("accepts uploads up to 4.0 MiB (FileSettings.MaxFileSize)", p.stderr)
        p = self.apply(code=1)
        self.assertIn("add a config step before it with FileSettings.MaxFileSize", p.stderr)
        self.assertEqual([e for e in self.srv.log(since=seq) if e["method"] not in ("GET", "HEAD")], [])
        self.srv.config(FileSettings={"MaxFileSize": 100 * MIB})
        self.apply()
        self.assert_one_clean_upload()


class ProcessTest(Case):
    def test_failing_import_job_reports_line_and_the_next_apply_retries(self):
        self.srv.faults(job_fail={"type": "import_process", "error": "Bad line — injected", "line_number": 5})
        self.write_plan(process=True)
        p = self.apply(code=1)
        self.assertIn("at line 5: Bad line — injected; the next apply starts a new import (attempt 2 of 3)",
                      p.stderr)
        job = self.jobs_created()[0]["id"]
        self.assertNotIn("job_id", self.ckpt("import"))
        self.assertEqual(self.ckpt("import")["failed_jobs"][0]["id"], job)
        self.assertIn("would start a new import (attempt 2 of 3) after import job %s failed" % job, self.dry_run())
        # The failed job is history: the next apply starts one new job for the file, which is still there.
        p = self.apply()
        self.assertIn("starting a new import (attempt 2 of 3)", p.stdout)
        self.assertEqual([j["status"] for j in self.jobs_created()], ["error", "success"])
        self.assertEqual(len(self.sessions_created()), 1)

    def test_stalling_job_stall_timeout_then_adopted_not_duplicated(self):
        self.srv.faults(job_stall={"type": "import_process"})
        self.write_plan(process=True, process_extra="    stall_timeout: 2s\n")
        p = self.apply(code=1)
        self.assertIn("shows no change for 2s", p.stderr)
        job = self.jobs_created()[0]
        self.assertEqual(job["status"], "in_progress")
        # Timeouts are tuning, not definition: the checkpoint stays and the
        # same job is waited for again, never a second one.
        self.write_plan(process=True, process_extra="    timeout: 2s\n")
        out = self.dry_run()
        self.assertIn("would keep waiting for import job %s" % job["id"], out)
        p = self.apply(code=1)
        self.assertIn("after the step's timeout of 2s", p.stderr)
        self.assertEqual(len(self.jobs_created()), 1)
        # Changing what the step does (extract_content) drops the checkpoint,
        # yet the running import of the same file is adopted, not duplicated.
        self.write_plan(process=True, process_extra="    timeout: 2s\n    extract_content: true\n")
        p = self.apply(code=1)
        self.assertIn("adopting import_process job " + job["id"], p.stdout + p.stderr)
        self.assertEqual(len(self.jobs_created()), 1)

    def test_migration_killed_in_both_steps_makes_one_session_and_one_job(self):
        self.srv.stop()
        self.srv = FakeServer(job_pending_seconds=0, job_run_seconds=3).start()
        self.addCleanup(self.srv.stop)
        self.env = {"MMT_TOKEN": self.srv.admin_token}
        self.srv.faults(upload_bps=3 * MIB)
        self.write_plan(process=True)
        proc = self.start_apply()
        wait_for(lambda: self.ckpt().get("offset", 0) >= 5 * MIB, what="first chunk stored")
        self.kill(proc)
        self.settle()
        self.srv.clear_faults()
        proc = self.start_apply()
        wait_for(lambda: "job_id" in self.ckpt("import"), timeout=30, what="job checkpoint")
        self.kill(proc)
        job = self.ckpt("import")["job_id"]
        self.assertIn("would keep waiting for import job %s" % job, self.dry_run())
        self.apply()
        self.assertEqual([j["id"] for j in self.jobs_created()], [job])
        self.assertEqual(self.step_rec("import")["outputs"]["job_id"], job)
        self.assertEqual(len(self.sessions_created()), 1)
        self.assertEqual(self.srv.control("GET", "uploads"), [])
        self.assertIn("imported", [t["name"] for t in self.srv.model()["teams"]])

    def test_file_gone_from_imports_is_explained(self):
        self.write_plan()
        self.apply()
        name = self.step_rec("upload")["outputs"]["name"]
        os.unlink(self.server_file(name))  # as the retention job would
        self.write_plan(process=True)
        p = self.apply(code=1)
        self.assertIn("'%s' is not in the server's import directory" % name, p.stderr)
        self.assertEqual(self.jobs_created(), [])
        self.assertIn("would fail: '%s' is not in the import directory" % name, self.dry_run())


if __name__ == "__main__":
    harness.main()
