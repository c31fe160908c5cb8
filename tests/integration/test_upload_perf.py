"""The upload step's fast path against the fake server (tests/fake/mmfake.py):
the file read once, requests that follow one another without asking the
session in between, resumes that resend (almost) nothing, and the
rate_limit cap.

No timing is asserted except one lower bound (a capped upload cannot be
faster than its cap), which a slow machine can only make easier to meet.
Throughput lives in bench/ (bench/run), not here.
"""
import hashlib
import os
import tempfile
import time
import unittest
import zipfile

import harness
from harness import Workdir, run, start, wait_for, kill9
from fakelib import FakeServer

MIB = 1024 * 1024
EXPORT = "perfperfperfperfperfperf00_export.zip"


def make_zip(path, size):
    """A valid export zip of about size bytes (the download step checks it)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("import.jsonl", '{"type":"version","version":1}\n')
        z.writestr("data/blob.bin", os.urandom(size))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


class Base(unittest.TestCase):
    SIZE = 24 * MIB

    def setUp(self):
        self.wd = Workdir(self)
        self.srv = FakeServer(max_file_size=64 * MIB).start()
        self.addCleanup(self.srv.stop)
        self.env = {"MMT_TOKEN": self.srv.admin_token}
        self.file = os.path.join(self.wd.path, "archive.zip")
        make_zip(self.file, self.SIZE)
        self.size = os.path.getsize(self.file)
        self.sha = sha256_file(self.file)

    def plan(self, steps):
        text = ("version: 1\nname: perf\nservers:\n  mm:\n    url: %s\n    token: ${env:MMT_TOKEN}\n"
                "steps:\n" % self.srv.url) + steps
        self.plan_path = self.wd.plan(text)
        return self.plan_path

    def upload_step(self, extra="", proven=False):
        """The upload of self.file; a file no step of the plan checked must say unverified."""
        if not proven:
            extra = "    unverified: true\n" + extra
        return "  - id: upload\n    type: upload\n    server: mm\n    file: %s\n%s" % (self.file, extra)

    def apply(self, code=0):
        return run(["apply", self.plan_path], env=self.env, check_exit=code)

    def outputs(self, step="upload"):
        return self.wd.state("perf")["steps"][step]["outputs"]

    def posted(self, since=0):
        """Body bytes the fake read for POST /uploads/{id}."""
        return sum(e.get("request_bytes") or 0 for e in self.srv.log(since)
                   if e["method"] == "POST" and e["path"].startswith("/api/v4/uploads/"))

    def assert_uploaded(self):
        out = self.outputs()
        self.assertEqual((out["size"], out["sha256"]), (self.size, self.sha))
        stored = os.path.join(self.srv.import_dir, out["name"])
        self.assertEqual(sha256_file(stored), self.sha, "the server's file differs from the local one")
        self.assertEqual(self.srv.control("GET", "uploads"), [], "a session was left open")

    def held(self):
        """Bytes the fake has written so far: its .tmp file grows while a
        request's body arrives (file_offset only moves when it ends)."""
        d = self.srv.import_dir
        return max([os.path.getsize(os.path.join(d, n)) for n in os.listdir(d) if n.endswith(".tmp")] or [0])


class ReadOnceTest(Base):
    def test_digest_from_download_step_means_one_read(self):
        make_zip(os.path.join(self.srv.export_dir, EXPORT), self.SIZE)
        self.file = os.path.join(self.wd.path, "dl.zip")
        self.plan("  - {id: dl, type: download, server: mm, export: %s, path: %s}\n" % (EXPORT, self.file) +
                  self.upload_step(proven=True).replace(self.file, "\"${steps.dl.path}\""))
        p = self.apply()
        self.size, self.sha = os.path.getsize(self.file), sha256_file(self.file)
        self.assertIn("known from step 'dl' that checked it", p.stdout + p.stderr)
        self.assertIn("read %d bytes of '%s' (%d bytes long)" % (self.size, self.file, self.size),
                      p.stdout + p.stderr)
        self.assertEqual(self.outputs()["sha256"], self.outputs("dl")["sha256"])
        self.assert_uploaded()

    def test_modified_file_is_hashed_while_sent(self):
        make_zip(os.path.join(self.srv.export_dir, EXPORT), self.SIZE)
        self.file = os.path.join(self.wd.path, "dl.zip")
        self.plan("  - {id: dl, type: download, server: mm, export: %s, path: %s}\n"
                  "  - {id: other, type: exec, command: \"touch -d '+1 hour' %s\"}\n" % (EXPORT, self.file, self.file) +
                  self.upload_step(proven=True).replace(self.file, "\"${steps.dl.path}\""))
        p = self.apply()
        self.assertNotIn("known from step", p.stdout + p.stderr)
        self.size, self.sha = os.path.getsize(self.file), sha256_file(self.file)
        self.assertIn("read %d bytes" % self.size, p.stdout + p.stderr)
        self.assert_uploaded()

    def test_digest_from_verify_step_means_one_read(self):
        """A file from outside, checked by a verify step: the upload trusts
        the digest verify recorded for this inode and mtime, and reads the
        file only to send it."""
        self.plan("  - {id: check, type: verify, archive: %s}\n" % self.file + self.upload_step(proven=True))
        p = self.apply()
        self.assertIn("known from step 'check' that checked it", p.stdout + p.stderr)
        self.assertIn("read %d bytes of '%s' (%d bytes long)" % (self.size, self.file, self.size),
                      p.stdout + p.stderr)
        self.assertNotIn("computing the SHA-256", p.stdout + p.stderr)
        self.assertEqual(self.outputs()["sha256"], self.outputs("check")["sha256"])
        self.assert_uploaded()

    def test_file_rewritten_after_verify_is_read_again(self):
        """Same bytes, new mtime: the recorded digest no longer speaks for the
        file, so it is hashed (and proven by its digest) before sending."""
        self.plan("  - {id: check, type: verify, archive: %s}\n"
                  "  - {id: other, type: exec, command: \"touch -d '+1 hour' %s\"}\n" % (self.file, self.file) +
                  self.upload_step(proven=True))
        p = self.apply()
        self.assertNotIn("known from step", p.stdout + p.stderr)
        self.assertIn("was proven whole by step 'check'", p.stdout + p.stderr)
        self.assert_uploaded()

    def test_hash_while_sending_reads_once_and_grows_requests(self):
        self.plan(self.upload_step())
        p = self.apply()
        self.assertIn("read %d bytes of '%s'" % (self.size, self.file), p.stdout + p.stderr)
        self.assert_uploaded()
        posts = [e for e in self.srv.log() if e["method"] == "POST" and e["path"].startswith("/api/v4/uploads/")]
        gets = [e for e in self.srv.log() if e["method"] == "GET" and e["path"].startswith("/api/v4/uploads/")]
        self.assertEqual(self.posted(), self.size, "bytes sent twice")
        self.assertEqual(len(gets), 0, "a session created by this run is never asked its offset")
        self.assertLessEqual(len(posts), 2, "requests did not grow past 64 MiB")


class ResumeTest(Base):
    """kill -9 at 10 %, 50 % and 90 %, then apply again: byte-identical,
    and at most 1 MiB sent twice (what the server kept is never resent).
    10 % of the file is above 5 MiB: a smaller first part is thrown away by
    the server itself (app.upload.upload_data.first_part_too_small)."""
    SIZE = 60 * MIB

    def settled(self):
        """The fake is done with the dead request: it kept it (the session's
        offset is what it wrote) or threw it away (nothing written)."""
        ups = self.srv.control("GET", "uploads")
        return ups and ups[0]["file_offset"] == self.held()

    def kill_at(self, fraction, extra=""):
        self.plan(self.upload_step(extra))
        self.srv.faults(upload_bps=24 * MIB)
        proc = start(["apply", self.plan_path], env=self.env)
        wait_for(lambda: self.held() >= fraction * self.size, timeout=120, what="%d%% stored" % (fraction * 100))
        kill9(proc)
        wait_for(self.settled, timeout=30, what="the fake to finish the cut request")
        self.srv.clear_faults()
        p = self.apply()
        self.assert_uploaded()
        waste = self.posted() - self.size
        self.assertLessEqual(waste, MIB, "resent %d bytes" % waste)
        return p

    def test_kill_at_10_percent(self):
        self.kill_at(0.10)

    def test_kill_at_50_percent(self):
        p = self.kill_at(0.50)
        self.assertIn("computing the SHA-256 of the", p.stdout + p.stderr)

    def test_kill_at_90_percent_with_small_chunks(self):
        self.kill_at(0.90, "    chunk_size: 1MiB\n")

    def test_changed_file_after_kill_is_refused(self):
        self.plan(self.upload_step())
        self.srv.faults(upload_bps=24 * MIB)
        proc = start(["apply", self.plan_path], env=self.env)
        wait_for(lambda: self.held() >= 0.3 * self.size, timeout=120, what="30% stored")
        kill9(proc)
        self.srv.clear_faults()
        os.utime(self.file, None)  # same bytes, but it may have been rewritten
        p = self.apply(code=1)
        self.assertIn("changed since upload session", p.stderr)


class RateTest(Base):
    SIZE = 6 * 1000 * 1000

    def test_cap_is_a_lower_bound_on_time(self):
        self.plan(self.upload_step("    rate_limit: 2MB/s\n"))
        t0 = time.monotonic()
        self.apply()
        elapsed = time.monotonic() - t0
        self.assert_uploaded()
        ideal = self.size / 2e6
        self.assertGreaterEqual(elapsed, 0.9 * ideal, "%d bytes in %.2f s beat a 2 MB/s cap" % (self.size, elapsed))

    def test_rate_values(self):
        for v in ("50MB/s", "50MiB/s", "5000000"):
            self.plan(self.upload_step("    rate_limit: %s\n" % v))
            run(["validate", self.plan_path], env=self.env, check_exit=0)
        self.plan(self.upload_step("    rate_limit: fast\n"))
        p = run(["validate", self.plan_path], env=self.env, check_exit=2)
        self.assertIn("a rate like 50MB/s", p.stdout + p.stderr)


if __name__ == "__main__":
    harness.main()
