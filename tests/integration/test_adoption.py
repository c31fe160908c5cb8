"""A run killed after the server created a job or upload session but
before mmigrate recorded its id: the next run must adopt it, never create a
second one. The fake holds its answer ("delay" with phase "after") so the
kill lands exactly in that window."""
import unittest

import harness
from harness import Workdir, run, start, wait_for, kill9
from fakelib import FakeServer

PLAN = """version: 1
name: adopt
servers:
  source: {url: "${env:SRC_URL}", token: "${env:SRC_TOKEN}"}
  target: {url: "${env:DST_URL}", token: "${env:DST_TOKEN}"}
steps:
  - {id: export, type: export, server: source, poll_interval: 1s}
  - {id: download, type: download, server: source, export: "${steps.export.file}"}
  - {id: upload, type: upload, server: target, file: "${steps.download.path}"}
  - {id: import, type: process, server: target, file: "${steps.upload.name}", poll_interval: 1s}
"""


class AdoptionTest(unittest.TestCase):
    def setUp(self):
        self.src = FakeServer(seed="small", job_pending_seconds=0.3, job_run_seconds=0.5).start()
        self.addCleanup(self.src.stop)
        self.dst = FakeServer(seed="none", job_pending_seconds=0.3, job_run_seconds=0.5).start()
        self.addCleanup(self.dst.stop)
        self.wd = Workdir(self)
        self.plan = self.wd.plan(PLAN)
        self.output = ""
        self.env = {"SRC_URL": self.src.url, "SRC_TOKEN": self.src.admin_token,
                    "DST_URL": self.dst.url, "DST_TOKEN": self.dst.admin_token}

    def ckpt(self, step):
        try:
            return self.wd.state("adopt")["steps"][step].get("checkpoint") or {}
        except (OSError, ValueError, KeyError):
            return {}

    def kill_in_window(self, srv, path, created, step, id_key):
        """Holds the answer to POST path; kills mmigrate once the server has
        created the thing but the checkpoint has no id for it."""
        srv.faults(delay={"path": path, "method": "POST", "seconds": 5, "phase": "after"})
        proc = start(["apply", self.plan], env=self.env)
        try:
            wait_for(created, timeout=60, what="the server to create it")
            self.assertIsNone(self.ckpt(step).get(id_key))
        finally:
            self.output += kill9(proc)
        srv.clear_faults()

    def jobs(self, srv, job_type):
        return [j for j in srv.control("GET", "/jobs") if j["type"] == job_type]

    def test_adopts_export_job_upload_session_and_import_job(self):
        self.kill_in_window(self.src, "^/api/v4/jobs$", lambda: self.jobs(self.src, "export_process"),
                            "export", "job_id")
        self.kill_in_window(self.dst, "^/api/v4/uploads$",
                            lambda: [e for e in self.dst.log() if e["path"] == "/api/v4/uploads"
                                     and e["method"] == "POST"] or self.dst.control("GET", "/uploads"),
                            "upload", "upload_id")
        self.kill_in_window(self.dst, "^/api/v4/jobs$", lambda: self.jobs(self.dst, "import_process"),
                            "import", "job_id")
        r = run(["apply", self.plan], env=self.env, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Each run after a kill adopted what the killed one had created.
        self.output += r.stdout
        self.assertIn("adopting export_process job", self.output)
        self.assertIn("adopting upload session", self.output)
        self.assertIn("adopting import_process job", self.output)
        self.assertEqual(len(self.jobs(self.src, "export_process")), 1)
        self.assertEqual(len(self.jobs(self.dst, "import_process")), 1)
        # A held answer is logged once the fake has sent it (to a dead client).
        creates = lambda: [e for e in self.dst.log() if e["method"] == "POST" and e["path"] == "/api/v4/uploads"]
        wait_for(creates, timeout=30, what="the held POST /uploads to be logged")
        self.assertEqual(len(creates()), 1)
        self.assertEqual(self.src.model()["counts"]["posts"], self.dst.model()["counts"]["posts"])

    def test_lost_answer_is_adopted_in_the_same_run(self):
        self.src.faults(lose_response={"path": "^/api/v4/jobs$", "method": "POST"})
        r = run(["apply", self.plan], env=self.env, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("adopting export_process job", r.stdout)
        self.assertEqual(len(self.jobs(self.src, "export_process")), 1)


if __name__ == "__main__":
    harness.main()
