"""download step through the real binary against tests/fake/mmfake.py.

Exports are written straight into the fake's export directory (a zip of
random bytes, a few MiB), so these tests do not depend on the export step.
What they prove: the bytes on disk are the server's (SHA-256 compared with
the fake's file) after connections cut mid-body, a kill -9 mid-transfer, a
server that ignores Range, an export that changed between runs, 429/503
bursts; a resumed run asks for `Range: bytes=N-` with N > 0 and moves less
than twice the file; `mmigrate plan` says where it would resume and sends
only GETs; the token and a presigned link's signature never reach output,
state or journal.
"""
import datetime
import hashlib
import io
import json
import os
import signal
import time
import unittest
import zipfile

import harness
from harness import Workdir, run, start, kill9, wait_for, finish
from fakelib import FakeServer

HEAD = """version: 1
name: {name}
servers:
  src:
    url: {url}
    token: ${{env:SRC_TOKEN}}
steps:
"""

MIB = 1024 * 1024


def make_zip(size, seed):
    """A valid zip of about size bytes: one stored member of seeded random bytes."""
    rnd = hashlib.sha256(seed.encode()).digest()
    blocks, h = [], rnd
    while sum(map(len, blocks)) < size:
        h = hashlib.sha256(h).digest()
        blocks.append(h * 2048)  # 64 KiB per step, cheap and not compressible by accident
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("data/blob.bin", (2024, 1, 1, 0, 0, 0)),
                    b"".join(blocks)[:size], compress_type=zipfile.ZIP_STORED)
        zf.writestr("import.jsonl", '{"type":"version","version":1}\n')
    return buf.getvalue()


def sha(data):
    return hashlib.sha256(data).hexdigest()


class DownloadCase(unittest.TestCase):
    fake_options = {}
    NAME = "abcdefghijklmnopqrstuvwxyz_export.zip"

    def setUp(self):
        self.srv = FakeServer(**self.fake_options).start()
        self.addCleanup(self.srv.stop)
        self.wd = Workdir(self)
        self.env = {"SRC_TOKEN": self.srv.admin_token}

    # -- helpers ----------------------------------------------------------------
    def put_export(self, data, name=None):
        d = os.path.join(self.srv.dir, "state", "data", "export")
        path = os.path.join(d, name or self.NAME)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
        return data

    def plan(self, step, name="p"):
        return self.wd.plan(HEAD.format(name=name, url=self.srv.url) + step)

    def step(self, extra=""):
        return "  - {id: dl, type: download, server: src, export: %s%s}\n" % (self.NAME, extra)

    def mm(self, *args, want=0):
        return run(list(args), env=self.env, check_exit=want)

    def target(self, name="p"):
        return os.path.join(self.wd.state_dir(name), self.NAME)

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def gets(self, since=0, marker="/exports/"):
        return [e for e in self.srv.log(since) if e["method"] == "GET" and marker in e["path"]]

    def gets_started_after(self, t0):
        return [e for e in self.gets() if datetime.datetime.fromisoformat(e["time"]) >= t0]

    def resumed_from(self, since):
        """Where the first request that ran to completion after `since` started.
        (The fake logs a request when it ends: an interrupted one shows up late.)"""
        done = [e for e in self.gets(since) if e["outcome"] == "ok"]
        self.assertTrue(done)
        rng = done[0]["headers"].get("range", "bytes=0-")
        return int(rng[len("bytes="):-1])

    def last_seq(self):
        log = self.srv.log()
        return log[-1]["seq"] if log else 0

    def assert_done(self, data, name="p"):
        self.assertEqual(sha(self.read(self.target(name))), sha(data))
        self.assertFalse(os.path.exists(self.target(name) + ".part"))
        out = self.wd.state(name)["steps"]["dl"]["outputs"]
        self.assertEqual(out["sha256"], sha(data))
        self.assertEqual(out["size"], len(data))
        self.assertEqual(out["path"], self.target(name))

    def assert_no_secret(self, secret, *texts, name="p"):
        sd = self.wd.state_dir(name)
        files = [os.path.join(sd, f) for f in ("state.json", "journal.jsonl")]
        for t in list(texts) + [self.read(f).decode() for f in files if os.path.exists(f)]:
            self.assertNotIn(secret, t)

    def start_slow(self, p, bps=1 * MIB, at=MIB):
        """Starts apply on a slow link and returns once the .part holds `at` bytes."""
        self.srv.faults(download_bps=bps)
        proc = start(["apply", p], env=self.env)
        part = self.target() + ".part"
        try:
            wait_for(lambda: os.path.getsize(part) >= at, timeout=30, what=".part to grow")
        except AssertionError:
            kill9(proc)
            raise
        return proc


class HappyPath(DownloadCase):
    def test_bytes_are_the_servers(self):
        data = self.put_export(make_zip(3 * MIB, "happy"))
        r = self.mm("apply", self.plan(self.step()))
        self.assert_done(data)
        for e in self.gets():
            self.assertNotIn("if_range", e["headers"])
            self.assertTrue(e["headers"]["authorization"])
        self.assert_no_secret(self.srv.admin_token, r.stdout, r.stderr)
        # A second apply skips the finished step without a request for the file.
        seq = self.last_seq()
        r = self.mm("apply", self.plan(self.step()))
        self.assertIn("skip", r.stdout)
        self.assertEqual(self.gets(seq), [])

    def test_fresh_download_is_one_get(self):
        # No probe before the transfer: the headers of the one GET give the total.
        data = self.put_export(make_zip(2 * MIB, "oneget"))
        self.mm("apply", self.plan(self.step()))
        self.assert_done(data)
        self.assertEqual(len(self.gets()), 1, self.gets())
        self.assertNotIn("range", self.gets()[0]["headers"])

    def test_cut_connections_in_one_run(self):
        data = self.put_export(make_zip(3 * MIB, "cuts"))
        self.srv.faults(download_drop={"after_bytes": 400000, "count": 6})
        self.mm("apply", self.plan(self.step()))
        self.assert_done(data)
        cut = [e for e in self.gets() if e["outcome"] == "download_dropped"]
        self.assertGreaterEqual(len(cut), 4)
        starts = [int(e["headers"]["range"][6:-1]) for e in self.gets() if "range" in e["headers"]]
        self.assertEqual(starts, sorted(starts))
        self.assertTrue(starts and starts[-1] > 0)

    def test_sha256_param_mismatch_fails_and_removes_part(self):
        data = self.put_export(make_zip(1 * MIB, "sum"))
        r = self.mm("apply", self.plan(self.step(", sha256: " + "0" * 64)), want=1)
        self.assertIn("expected " + "0" * 64, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(self.target() + ".part"))
        self.assertFalse(os.path.exists(self.target()))
        r = self.mm("apply", self.plan(self.step(", sha256: " + sha(data).upper())))
        self.assert_done(data)

    def test_missing_export_names_it(self):
        r = self.mm("apply", self.plan(self.step()), want=1)
        text = r.stdout + r.stderr
        self.assertIn(self.NAME, text)
        self.assertIn("404", text)

    def test_plan_checks(self):
        p = self.plan("  - {id: dl, type: download, server: src, export: a.zip, url: 'https://x/y'}\n"
                      "  - {id: d2, type: download, url: 'https://x/y', server: src}\n"
                      "  - {id: d3, type: download, export: notazip, server: src}\n"
                      "  - {id: d4, type: download, url: 'https://x/y', sha256: abc}\n")
        r = self.mm("validate", p, want=2)
        text = r.stdout + r.stderr
        self.assertIn("not both", text)
        self.assertIn("takes no 'server'", text)
        self.assertIn("ending in .zip", text)
        self.assertIn("64 hex digits", text)


class Resume(DownloadCase):
    def test_kill9_then_plan_then_resume(self):
        data = self.put_export(make_zip(4 * MIB, "kill"))
        p = self.plan(self.step())
        proc = self.start_slow(p)
        kill9(proc)
        have = os.path.getsize(self.target() + ".part")
        self.assertTrue(0 < have < len(data))
        ck = self.wd.state("p")["steps"]["dl"]["checkpoint"]
        self.assertEqual(ck["total"], len(data))

        # The dry run says where apply would resume, and only reads.
        seq = self.last_seq()
        r = self.mm("plan", p)
        self.assertIn("resume at byte %d of %d" % (have, len(data)), r.stdout)
        self.assertEqual([e for e in self.srv.log(seq) if e["method"] != "GET"], [])
        self.assertEqual(os.path.getsize(self.target() + ".part"), have)
        r2 = self.mm("plan", "--offline", p)
        self.assertIn("resume at byte %d" % have, r2.stdout)

        self.srv.faults(download_bps=0)
        seq = self.last_seq()
        r3 = self.mm("apply", p)
        self.assert_done(data)
        first = self.resumed_from(seq)
        self.assertGreater(first, 0)
        self.assertLessEqual(first, have)
        moved = sum(e["response_bytes"] for e in self.gets())
        self.assertLess(moved, 2 * len(data))
        self.assert_no_secret(self.srv.admin_token, r.stdout, r.stderr, r2.stdout, r3.stdout, r3.stderr)

    def test_resume_is_one_get(self):
        # The killed run checkpointed the total from its first answer's headers;
        # the resumed run compares the overlap in its one GET, no probe before it.
        data = self.put_export(make_zip(4 * MIB, "oneresume"))
        p = self.plan(self.step())
        kill9(self.start_slow(p))
        have = os.path.getsize(self.target() + ".part")
        self.assertEqual(self.wd.state("p")["steps"]["dl"]["checkpoint"]["total"], len(data))
        self.srv.faults(download_bps=0)
        t0 = datetime.datetime.now(datetime.timezone.utc)
        self.mm("apply", p)
        self.assert_done(data)
        second = self.gets_started_after(t0)
        self.assertEqual(len(second), 1, second)
        start = int(second[0]["headers"]["range"][len("bytes="):-1])
        self.assertTrue(0 < start <= have, (start, have))

    def test_sigint_keeps_part_and_resumes(self):
        data = self.put_export(make_zip(3 * MIB, "sigint"))
        p = self.plan(self.step())
        proc = self.start_slow(p, at=MIB // 2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code, out, err = finish(proc)
        self.assertEqual(code, 130, out + err)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(self.wd.state("p")["steps"]["dl"]["status"], "interrupted")
        have = os.path.getsize(self.target() + ".part")
        self.assertGreater(have, 0)
        self.srv.faults(download_bps=0)
        seq = self.last_seq()
        self.mm("apply", p)
        self.assert_done(data)
        self.assertGreater(self.resumed_from(seq), 0)

    def test_ignored_range_restarts_from_zero(self):
        data = self.put_export(make_zip(3 * MIB, "norange"))
        # The first answer is cut; the proxy then drops every Range header.
        self.srv.faults(download_drop={"after_bytes": 1 * MIB, "count": 1}, ignore_range={"count": -1})
        r = self.mm("apply", self.plan(self.step()))
        self.assert_done(data)
        self.assertIn("ignored the Range header", r.stdout + r.stderr)
        self.assertTrue([e for e in self.gets() if e.get("fault") == "ignore_range"])

    def test_changed_export_between_runs(self):
        old = self.put_export(make_zip(4 * MIB, "old"))
        p = self.plan(self.step())
        kill9(self.start_slow(p))
        self.srv.faults(download_bps=0)
        new = self.put_export(make_zip(4 * MIB, "new"))  # same size, other bytes
        self.assertEqual(len(old), len(new))
        r = self.mm("apply", p)
        self.assertIn("changed on the server", r.stdout + r.stderr)
        self.assert_done(new)

    def test_grown_export_between_runs(self):
        old = self.put_export(make_zip(4 * MIB, "grow"))
        p = self.plan(self.step())
        kill9(self.start_slow(p))
        new = self.put_export(make_zip(5 * MIB, "grow"))  # same first bytes, other size
        # Fast, but paced, so an aborted check cannot fill the socket buffers.
        self.srv.faults(download_bps=16 * MIB)
        t0 = datetime.datetime.now(datetime.timezone.utc)
        r = self.mm("apply", p)
        self.assertIn("changed on the server", r.stdout + r.stderr)
        self.assert_done(new)
        # The other size is seen before anything is appended: one copy moves.
        moved = sum(e["response_bytes"] for e in self.gets_started_after(t0))
        self.assertLess(moved, len(new) + MIB)

    def test_complete_part_is_finished_without_download(self):
        data = self.put_export(make_zip(2 * MIB, "whole"))
        os.makedirs(self.wd.state_dir("p"), exist_ok=True)
        with open(self.target() + ".part", "wb") as f:
            f.write(data)
        self.mm("apply", self.plan(self.step()))
        self.assert_done(data)
        self.assertLessEqual(sum(e["response_bytes"] for e in self.gets()), 128 * 1024)

    def test_part_longer_than_server_file_gets_416_and_restarts(self):
        data = self.put_export(make_zip(1 * MIB, "short"))
        os.makedirs(self.wd.state_dir("p"), exist_ok=True)
        with open(self.target() + ".part", "wb") as f:
            f.write(data + data)
        r = self.mm("apply", self.plan(self.step()))
        self.assert_done(data)
        self.assertIn(416, [e["status"] for e in self.gets()])
        self.assertIn("changed on the server", r.stdout + r.stderr)

    def test_final_file_without_part_is_checked_and_kept(self):
        # A run that died between the rename and recording the step.
        data = self.put_export(make_zip(2 * MIB, "final"))
        p = self.plan(self.step())
        self.mm("apply", p)
        self.mm("reset", p)
        seq = self.last_seq()
        r = self.mm("apply", p)
        self.assertIn("already complete", r.stdout)
        self.assert_done(data)
        self.assertLessEqual(sum(e["response_bytes"] for e in self.gets(seq)), 128 * 1024)


class CutEverySecond(DownloadCase):
    """Every answer is cut after 1 s (S3 cuts at ~30 s, WriteTimeout at 300 s)."""
    fake_options = {"write_timeout": 1}

    def test_session_expires_mid_download(self):
        data = self.put_export(make_zip(3 * MIB, "relogin"))
        admin = self.srv.credentials["admin"]
        self.env = {"SRC_USER": admin["username"], "SRC_PASS": admin["password"]}
        p = self.wd.plan("version: 1\nname: p\nservers:\n  src:\n    url: %s\n"
                         "    username: ${env:SRC_USER}\n    password: ${env:SRC_PASS}\nsteps:\n"
                         % self.srv.url + self.step())
        proc = self.start_slow(p, at=MIB // 2)
        self.srv.faults(expire_sessions=True)
        code, out, err = finish(proc)
        self.assertEqual(code, 0, out + err)
        self.assert_done(data)
        log = self.srv.log()
        first_401 = next(e["seq"] for e in log if e["status"] == 401 and "/exports/" in e["path"])
        logins = [e["seq"] for e in log if e["path"].endswith("/users/login")]
        self.assertEqual(len(logins), 2)
        self.assertGreater(logins[1], first_401)
        self.assertIn("logging in again", out + err)
        self.assertGreaterEqual(len([e for e in self.gets() if e["outcome"] == "write_timeout"]), 2)
        self.assert_no_secret(admin["password"], out, err)


class Bursts(DownloadCase):
    def test_429_and_503_bursts(self):
        data = self.put_export(make_zip(2 * MIB, "burst"))
        self.srv.faults(errors=[{"path": "/exports/", "status": 429, "retry_after": 1, "count": 2},
                                {"path": "/exports/", "status": 503, "count": 2}])
        self.mm("apply", self.plan(self.step()))
        self.assert_done(data)
        statuses = [e["status"] for e in self.gets()]
        self.assertEqual(statuses.count(429), 2)
        self.assertEqual(statuses.count(503), 2)

    def test_gives_up_without_progress(self):
        self.put_export(make_zip(1 * MIB, "never"))
        self.srv.faults(errors=[{"path": "/exports/", "status": 503, "count": -1}])
        r = self.mm("apply", self.plan(self.step(", retries: 2")), want=1)
        text = r.stdout + r.stderr
        self.assertIn("without progress", text)
        self.assertIn("HTTP 503", text)
        self.assertIn("/api/v4/exports/" + self.NAME, text)
        self.assertIn("'dl'", text)


class Presigned(DownloadCase):
    fake_options = {"presign": True}

    def presigned_url(self):
        r = self.srv.request("POST", "/exports/%s/presign-url" % self.NAME)
        self.assertEqual(r.status, 200, r)
        return r.json()["url"]

    def test_plain_url_is_fetched_without_credentials(self):
        data = self.put_export(make_zip(2 * MIB, "s3"))
        url = self.presigned_url()
        signature = url.split("X-Amz-Signature=")[1].split("&")[0]
        self.srv.faults(download_drop={"after_bytes": 700000, "count": 2})
        p = self.plan('  - {id: dl, type: download, url: "%s", path: got.zip}\n' % url)
        r = self.mm("apply", p)
        got = os.path.join(self.wd.state_dir("p"), "got.zip")  # a relative path: in the state directory
        self.assertEqual(sha(self.read(got)), sha(data))
        s3 = self.gets(marker="/__s3/")
        self.assertGreaterEqual(len(s3), 2)
        for e in s3:
            self.assertFalse(e["headers"]["authorization"])
        self.assertTrue(any(e["headers"].get("range", "").startswith("bytes=") for e in s3))
        self.assertEqual(self.gets(marker="/api/v4/exports/"), [])
        self.assert_no_secret(signature, r.stdout, r.stderr)
        self.assert_no_secret(self.srv.admin_token, r.stdout, r.stderr)

    def test_presign_param_downloads_from_s3(self):
        data = self.put_export(make_zip(2 * MIB, "presign"))
        r = self.mm("apply", self.plan(self.step(", presign: true")))
        self.assert_done(data)
        self.assertTrue(self.gets(marker="/__s3/"))
        self.assertEqual(self.gets(marker="/api/v4/exports/"), [])
        self.assertNotIn("X-Amz-Signature", r.stdout + r.stderr)


class PresignOff(DownloadCase):
    def test_presign_falls_back_to_the_api(self):
        data = self.put_export(make_zip(1 * MIB, "fallback"))
        r = self.mm("apply", self.plan(self.step(", presign: true")))
        self.assert_done(data)
        self.assertIn("no presigned link", r.stdout)
        posts = [e for e in self.srv.log() if e["method"] == "POST"]
        self.assertEqual(len(posts), 1)  # asked once, not retried on the permanent 500


class LocalFaults(DownloadCase):
    """What the disk and the admin's hands can do to a download."""

    def test_part_deleted_mid_download(self):
        data = self.put_export(make_zip(3 * MIB, "deleted"))
        p = self.plan(self.step())
        proc = self.start_slow(p, at=MIB // 2)
        os.unlink(self.target() + ".part")
        self.srv.faults(download_bps=0)
        code, out, err = finish(proc)
        # The bytes went to a file nobody can see: the step must not call them downloaded.
        self.assertEqual(code, 1, out + err)
        self.assertFalse(os.path.exists(self.target()))
        self.mm("apply", p)
        self.assert_done(data)

    def test_read_only_state_dir(self):
        data = self.put_export(make_zip(1 * MIB, "erofs"))
        p = self.plan(self.step())
        env = dict(self.env, MMIGRATE_TEST_FAULT="1:EROFS+")
        r = run(["apply", p], env=env, check_exit=1)
        self.assertIn("Read-only file system", r.stdout + r.stderr)
        self.assertFalse(os.path.exists(self.target()))
        self.mm("apply", p)
        self.assert_done(data)


if __name__ == "__main__":
    harness.main()
