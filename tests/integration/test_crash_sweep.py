"""Crash sweep through the OS seam: a small whole migration (auth, export,
download, verify, upload, import) is run once to count its seam calls
(MMIGRATE_TEST_FAULT_COUNT); then, for each chosen N, `apply` with
MMIGRATE_TEST_FAULT=N:exit ends the process at the Nth file call as a crash
would (no flush, no handler), or N:ENOSPC / N:EIO fails that call, and a
second `apply` without faults must finish with:

  the downloaded archive byte-identical to the export on the server,
  exactly one export job, one upload session and one import job,
  a state file that parses with every step done.

Every N up to MMIGRATE_SWEEP_DENSE (default 15) is tried, then a
deterministic stride so that about MMIGRATE_SWEEP_POINTS (default 15) more
points cover the rest, and the last call. MMIGRATE_SWEEP_ALL=1 tries every
N. The test prints what it covered.
"""
import hashlib
import os
import time
import unittest

import harness
from harness import Workdir, run
from fakelib import FakeServer

PLAN = """version: 1
name: sweep
servers:
  source:
    url: ${env:SRC_URL}
    token: ${env:SRC_TOKEN}
  target:
    url: ${env:DST_URL}
    username: admin
    password: ${env:DST_PASSWORD}
steps:
  - {id: login-source, type: auth, server: source}
  - {id: export, type: export, server: source, poll_interval: 1s, timeout: 2m}
  - {id: download, type: download, server: source, export: "${steps.export.file}"}
  - {id: check, type: verify, archive: "${steps.download.path}"}
  - {id: upload, type: upload, server: target, file: "${steps.download.path}"}
  - {id: import, type: process, server: target, file: "${steps.upload.name}", poll_interval: 1s, timeout: 2m}
"""


def points(total, dense, extra):
    chosen = list(range(1, min(dense, total) + 1))
    if total > dense:
        stride = max(1, (total - dense) // max(1, extra))
        chosen += list(range(dense + stride, total + 1, stride))
        if chosen[-1] != total:
            chosen.append(total)
    return chosen


class CrashSweepTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.src = FakeServer(seed="small", job_pending_seconds=0, job_run_seconds=0.1).start()
        cls.dst = FakeServer(seed="none", job_pending_seconds=0, job_run_seconds=0.1).start()
        cls.env = {"SRC_URL": cls.src.url, "SRC_TOKEN": cls.src.admin_token, "DST_URL": cls.dst.url,
                   "DST_PASSWORD": cls.dst.credentials["admin"]["password"]}

    @classmethod
    def tearDownClass(cls):
        cls.src.stop()
        cls.dst.stop()

    def jobs(self, srv, job_type):
        return {j["id"] for j in srv.control("GET", "/jobs") if j["type"] == job_type}

    def one_point(self, spec):
        wd = Workdir(self)
        plan = wd.plan(PLAN)
        exports0, imports0 = self.jobs(self.src, "export_process"), self.jobs(self.dst, "import_process")
        seq0 = max([e["seq"] for e in self.dst.log()] or [0])
        env = dict(self.env)
        if spec:
            env["MMIGRATE_TEST_FAULT"] = spec
        first = run(["apply", plan], env=env, timeout=180)
        second = run(["apply", plan], env=self.env, timeout=180)
        where = "%s: first exit %d, second exit %d\n%s%s" % (spec, first.returncode, second.returncode,
                                                            second.stdout, second.stderr)
        self.assertEqual(second.returncode, 0, where)
        st = wd.state("sweep")
        self.assertTrue(all(v["status"] == "done" for v in st["steps"].values()), where)
        exports = self.jobs(self.src, "export_process") - exports0
        imports = self.jobs(self.dst, "import_process") - imports0
        uploads = [e for e in self.dst.log(since=seq0) if e["method"] == "POST"
                   and e["path"] == "/api/v4/uploads" and e["status"] in (200, 201)]
        self.assertEqual(len(exports), 1, where)
        self.assertEqual(len(uploads), 1, where)
        self.assertEqual(len(imports), 1, where)
        out = st["steps"]["download"]["outputs"]
        with open(out["path"], "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        with open(os.path.join(self.src.export_dir, st["steps"]["export"]["outputs"]["file"]), "rb") as f:
            want = hashlib.sha256(f.read()).hexdigest()
        self.assertEqual(got, want, where)
        self.assertEqual(out["sha256"], want, where)
        # status reads the state and the journal back without complaint.
        run(["status", plan], check_exit=0)

    def test_sweep(self):
        wd = Workdir(self)
        plan = wd.plan(PLAN)
        count_file = os.path.join(wd.path, "count")
        env = dict(self.env, MMIGRATE_TEST_FAULT_COUNT=count_file)
        run(["apply", plan], env=env, timeout=180, check_exit=0)
        with open(count_file) as f:
            total = int(f.read())
        print("\ncrash sweep: a whole migration makes %d seam calls" % total, flush=True)
        if os.environ.get("MMIGRATE_SWEEP_ALL"):
            chosen = list(range(1, total + 1))
        else:
            chosen = points(total, int(os.environ.get("MMIGRATE_SWEEP_DENSE", "15")),
                            int(os.environ.get("MMIGRATE_SWEEP_POINTS", "15")))
        t0 = time.monotonic()
        for n in chosen:
            with self.subTest(n=n):
                self.one_point("%d:exit" % n)
        # Failing calls instead of crashes: a sample, each errno.
        errs = ["%d:ENOSPC" % n for n in chosen[::5]] + ["%d:EIO" % n for n in chosen[2::5]]
        for spec in errs:
            with self.subTest(spec=spec):
                self.one_point(spec)
        print("crash sweep: %d of %d exit points (%s), %d errno points (%s) in %.0f s"
              % (len(chosen), total, ",".join(map(str, chosen)), len(errs), ",".join(errs),
                 time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    harness.main()
