"""The whole migration (auth, export, download, verify, upload, import,
reconcile) through the real binary against two fake servers, interrupted
with kill -9 at several points, resumed, and checked from the servers'
request logs: one export job, one upload session, one import job, however
often it was interrupted, and the target ends up with the source's data."""
import datetime
import hashlib
import json
import os
import random
import time
import unittest

import harness
from harness import Workdir, run, start, wait_for, kill9, finish
from fakelib import FakeServer

PLAN = """version: 1
name: mig
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
  - {id: export, type: export, server: source, poll_interval: 1s, timeout: 5m}
  - {id: download, type: download, server: source, export: "${steps.export.file}"}
  - {id: check, type: verify, archive: "${steps.download.path}"}
  - {id: upload, type: upload, server: target, file: "${steps.download.path}", chunk_size: 1MiB}
  - {id: import, type: process, server: target, file: "${steps.upload.name}", poll_interval: 1s, timeout: 5m}
  - {id: reconcile, type: verify, server: target, archive: "${steps.download.path}"}
"""

WRITES = ("POST", "PUT", "DELETE", "PATCH")


def posts(log, path):
    return [e for e in log if e["method"] == "POST" and e["path"] == path and e["status"] in (200, 201)]


def job_posts(srv, job_type):
    jobs = srv.control("GET", "/jobs")
    return [j for j in jobs if j["type"] == job_type]


class MigrationTest(unittest.TestCase):
    def setUp(self):
        self.src = FakeServer(seed="medium", job_pending_seconds=0.5, job_run_seconds=3).start()
        self.addCleanup(self.src.stop)
        self.dst = FakeServer(seed="none", job_pending_seconds=0.5, job_run_seconds=3).start()
        self.addCleanup(self.dst.stop)
        self.wd = Workdir(self)
        self.plan = self.wd.plan(PLAN)
        self.env = {"SRC_URL": self.src.url, "SRC_TOKEN": self.src.admin_token,
                    "DST_URL": self.dst.url, "DST_PASSWORD": self.dst.credentials["admin"]["password"]}
        self.secrets = [self.src.admin_token, self.dst.credentials["admin"]["password"]]

    def apply_until(self, predicate, what):
        proc = start(["apply", self.plan], env=self.env)
        try:
            wait_for(predicate, timeout=90, what=what)
        finally:
            kill9(proc)

    def checkpoint(self, step, key):
        try:
            return self.wd.state("mig")["steps"][step]["checkpoint"].get(key)
        except (KeyError, OSError, ValueError, AttributeError):
            return None

    def part_size(self):
        d = self.wd.state_dir("mig")
        sizes = [os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".part")]
        return max(sizes) if sizes else 0

    def upload_offset(self):
        ups = self.dst.control("GET", "/uploads")
        return max([u.get("file_offset", 0) for u in ups] or [0])

    @staticmethod
    def started_since(srv, t0):
        """Requests that began after t0 (the fake logs a request when it ends,
        so a killed run's last download may be logged later: judge by start)."""
        return [e for e in srv.log()
                if datetime.datetime.fromisoformat(e["time"]).timestamp() >= t0]

    def plan_makes_no_writes(self, srv_list):
        t0 = time.time()
        r = run(["plan", self.plan], env=self.env)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        for s in srv_list:
            writes = [e for e in self.started_since(s, t0) if e["method"] in WRITES]
            self.assertEqual(writes, [], "plan sent writes")
        # --offline: no request at all, and still an answer for every step.
        t0 = time.time()
        off = run(["plan", "--offline", self.plan], env=self.env)
        self.assertIn(off.returncode, (0, 1), off.stderr)
        self.assertIn("steps would do something", off.stdout)
        for s in srv_list:
            self.assertEqual(self.started_since(s, t0), [], "plan --offline made requests")
        return r

    def test_kill9_at_every_stage_then_resume(self):
        # 1. The export job is recorded and running: kill.
        self.apply_until(lambda: self.checkpoint("export", "job_id"), "export job checkpoint")
        # 2. Slow the download, kill mid-transfer.
        self.src.faults(download_bps=400000)
        self.apply_until(lambda: self.part_size() > 1000000, "download under way")
        r = self.plan_makes_no_writes([self.src, self.dst])
        self.assertIn("download", r.stdout)
        self.src.faults(download_bps=0)
        # 3. Slow the upload, kill once part of it is on the server.
        self.dst.faults(upload_bps=1500000)
        self.apply_until(lambda: self.upload_offset() >= 5 * 1024 * 1024, "upload under way")
        self.dst.faults(upload_bps=0)
        # 4. Kill while waiting for the import job.
        self.apply_until(lambda: self.checkpoint("import", "job_id"), "import job checkpoint")
        self.plan_makes_no_writes([self.src, self.dst])
        # 5. Finish.
        r = run(["apply", self.plan], env=self.env, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # Exactly one of everything that must never happen twice.
        self.assertEqual(len(job_posts(self.src, "export_process")), 1)
        self.assertEqual(len(posts(self.dst.log(), "/api/v4/uploads")), 1)
        self.assertEqual(len(job_posts(self.dst, "import_process")), 1)
        # The download resumed rather than starting over.
        ranges = [e for e in self.src.log() if e["path"].startswith("/api/v4/exports/")
                  and e["method"] == "GET" and e["headers"].get("range")]
        self.assertTrue(ranges, "no resumed (Range) download request")
        # The target holds what the source had.
        s, t = self.src.model()["counts"], self.dst.model()["counts"]
        for key in ("teams", "channels", "posts", "direct_channels", "direct_posts"):
            self.assertEqual(s[key], t[key], key)
        st = self.wd.state("mig")
        self.assertTrue(all(v["status"] == "done" for v in st["steps"].values()))
        self.assertEqual(st["steps"]["download"]["outputs"]["sha256"],
                         st["steps"]["check"]["outputs"]["sha256"])
        # Secrets never written or printed.
        files = [os.path.join(self.wd.state_dir("mig"), n) for n in ("state.json", "journal.jsonl")]
        texts = [r.stdout, r.stderr]
        for f in files:
            with open(f) as fh:
                texts.append(fh.read())
        for secret in self.secrets:
            harness.assert_no_secret(self, secret, *texts)

    def test_reconcile_finds_missing_channel(self):
        r = run(["apply", self.plan], env=self.env, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.dst.delete_channel("eng", "off-topic")
        run(["reset", self.plan, "reconcile"], check_exit=0)
        r = run(["apply", self.plan], env=self.env, timeout=120)
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing on target: channel 'eng/off-topic'", r.stdout)
        # An archive that changed after its download was recorded is caught.
        st = self.wd.state("mig")
        with open(st["steps"]["download"]["outputs"]["path"], "ab") as f:
            f.write(b"\0")
        run(["reset", self.plan, "check"], check_exit=0)
        r = run(["apply", self.plan], env=self.env, timeout=120)
        self.assertEqual(r.returncode, 1)
        self.assertIn("changed since it was downloaded", r.stderr)
        # Reconciliation only reads.
        self.assertFalse([e for e in self.dst.log() if e["method"] in WRITES
                          and e["path"].startswith(("/api/v4/teams", "/api/v4/channels"))])


class TortureTest(unittest.TestCase):
    """kill -9 at seeded random moments. MMIGRATE_TORTURE_RUNS kills (default
    50; 500 for the long mode), MMIGRATE_TORTURE_SEED to replay a run (the
    seed is printed). Each migration is killed until it has been interrupted
    a few times, then finished and checked: one export job, one upload
    session, one import job, identical bytes; then a fresh one starts."""

    KILLS_PER_MIGRATION = 6

    def setUp(self):
        self.src = FakeServer(seed="small", job_pending_seconds=0.2, job_run_seconds=0.5).start()
        self.addCleanup(self.src.stop)
        self.dst = FakeServer(seed="none", job_pending_seconds=0.2, job_run_seconds=0.5).start()
        self.addCleanup(self.dst.stop)
        self.env = {"SRC_URL": self.src.url, "SRC_TOKEN": self.src.admin_token,
                    "DST_URL": self.dst.url, "DST_PASSWORD": self.dst.credentials["admin"]["password"]}

    def jobs(self, srv, job_type):
        return {j["id"] for j in srv.control("GET", "/jobs") if j["type"] == job_type}

    def migration(self, rng, kills, where):
        wd = Workdir(self)
        plan = wd.plan(PLAN)
        exports0, imports0 = self.jobs(self.src, "export_process"), self.jobs(self.dst, "import_process")
        seq0 = max([e["seq"] for e in self.dst.log()] or [0])
        delays = []
        for _ in range(kills):
            delay = rng.uniform(0.05, 4.0)
            delays.append("%.2f" % delay)
            proc = start(["apply", plan], env=self.env)
            time.sleep(delay)
            if proc.poll() is None:
                kill9(proc)
            else:
                finish(proc)
        r = run(["apply", plan], env=self.env, timeout=300)
        what = "%s, kills after %s s" % (where, ",".join(delays))
        self.assertEqual(r.returncode, 0, what + "\n" + r.stdout + r.stderr)
        st = wd.state("mig")
        self.assertTrue(all(v["status"] == "done" for v in st["steps"].values()), what)
        self.assertEqual(len(self.jobs(self.src, "export_process") - exports0), 1, what)
        self.assertEqual(len(self.jobs(self.dst, "import_process") - imports0), 1, what)
        self.assertEqual(len(posts(self.dst.log(since=seq0), "/api/v4/uploads")), 1, what)
        with open(st["steps"]["download"]["outputs"]["path"], "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        with open(os.path.join(self.src.export_dir, st["steps"]["export"]["outputs"]["file"]), "rb") as f:
            self.assertEqual(got, hashlib.sha256(f.read()).hexdigest(), what)
        wd.cleanup()

    def test_seeded_random_kills(self):
        seed = int(os.environ.get("MMIGRATE_TORTURE_SEED") or random.SystemRandom().randrange(1 << 31))
        total = int(os.environ.get("MMIGRATE_TORTURE_RUNS", "50"))
        print("\ntorture: seed %d, %d kills (replay: MMIGRATE_TORTURE_SEED=%d MMIGRATE_TORTURE_RUNS=%d)"
              % (seed, total, seed, total), flush=True)
        rng = random.Random(seed)
        done, n, t0 = 0, 0, time.monotonic()
        while done < total:
            k = min(self.KILLS_PER_MIGRATION, total - done)
            self.migration(rng, k, "seed %d, migration %d" % (seed, n))
            done += k
            n += 1
        print("torture: %d kills over %d migrations in %.0f s, all resumed exactly once"
              % (done, n, time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    harness.main()
