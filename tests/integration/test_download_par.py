"""download step with `connections: N` against tests/fake/mmfake.py.

What they prove: four connections give the same file and the same outputs
(sha256, entries, crc_ok) as one; a kill -9 in the middle of a
four-connection download resumes every range where its checkpoint put it
(no range fetched again from its start, little more than the missing bytes
moved); a server that ignores Range falls back to one connection with a
warning; `validate` refuses a bad `connections` with its line.
"""
import datetime
import os
import signal
import time

import harness
from harness import start, kill9, wait_for, finish
from test_download import DownloadCase, make_zip, sha, MIB


def range_of(e):
    """(first, last) of a logged GET's Range header; last None when open."""
    a, b = e["headers"]["range"][len("bytes="):].split("-")
    return int(a), int(b) if b else None


class Parallel(DownloadCase):
    def conns(self, n):
        return self.step(", connections: %d" % n)

    def outputs(self, name="p"):
        return self.wd.state(name)["steps"]["dl"]["outputs"]

    def test_four_connections_same_bytes_as_one(self):
        data = self.put_export(make_zip(6 * MIB, "par"))
        self.mm("apply", self.plan(self.conns(1), name="one"))
        one = self.outputs("one")
        seq = self.last_seq()
        r = self.mm("apply", self.plan(self.conns(4)))
        self.assert_done(data)
        four = self.outputs()
        for key in ("sha256", "size", "entries", "crc_ok"):
            self.assertEqual(one[key], four[key], key)
        self.assertEqual(four["sha256"], sha(data))
        self.assertTrue(four["crc_ok"])
        gets = self.gets(seq)
        starts = sorted(range_of(e)[0] for e in gets)
        self.assertGreaterEqual(len(set(starts)), 4, starts)  # the lead and the ranges of the rest
        self.assertLessEqual(sum(e["response_bytes"] for e in gets), len(data))
        self.assertIn("4 connections", r.stdout + r.stderr)

    def test_kill9_resumes_every_range(self):
        data = self.put_export(make_zip(8 * MIB, "parkill"))
        p = self.plan(self.conns(4))
        self.srv.faults(download_bps=512 * 1024)  # per connection: about 3 s for a range
        proc = start(["apply", p], env=self.env)

        def moved():
            ck = (self.wd.state("p").get("steps", {}).get("dl") or {}).get("checkpoint") or {}
            rs = ck.get("ranges") or []
            return len(rs) >= 4 and all(pos - s > 256 * 1024 for s, pos, e in rs[1:])

        try:
            wait_for(moved, timeout=30, what="every range to checkpoint some progress")
        finally:
            kill9(proc)
        ck = self.wd.state("p")["steps"]["dl"]["checkpoint"]
        self.assertEqual(ck["total"], len(data))
        missing = sum(e - pos for s, pos, e in ck["ranges"])
        self.assertGreater(missing, 0)

        # plan tells the ranges, not the .part's size (a sparse file's)
        for args in (["plan", p], ["plan", "--offline", p]):
            self.assertIn("would resume %d ranges" % len(ck["ranges"]), self.mm(*args).stdout)

        self.srv.faults(download_bps=0)
        t0 = datetime.datetime.now(datetime.timezone.utc)
        self.mm("apply", p)
        self.assert_done(data)
        second = self.gets_started_after(t0)
        self.assertTrue(second)
        # every answer resumes a recorded range past its start, none a finished one
        for e in second:
            a, _ = range_of(e)
            mine = [(s, pos, end) for s, pos, end in ck["ranges"] if s <= a < end]
            self.assertEqual(len(mine), 1, (a, ck["ranges"]))
            s, pos, end = mine[0]
            self.assertGreater(a, s, "a range fetched again from its start")
            self.assertLess(pos, end)
        self.assertEqual(len(second), len([r for r in ck["ranges"] if r[1] < r[2]]))
        # the missing bytes, and at most `overlap` (64 KiB) more per range
        moved2 = sum(e["response_bytes"] for e in second)
        self.assertLessEqual(moved2, missing + len(ck["ranges"]) * 64 * 1024)

    def test_cuts_and_503s_on_several_connections(self):
        data = self.put_export(make_zip(6 * MIB, "parcuts"))
        self.srv.faults(download_drop={"after_bytes": 300000, "count": 4},
                        errors=[{"path": "/exports/", "status": 503, "count": 6}])
        self.mm("apply", self.plan(self.conns(4)))
        self.assert_done(data)
        self.assertTrue(self.outputs()["crc_ok"])
        self.assertTrue([e for e in self.gets() if e["outcome"] == "download_dropped"])
        self.assertIn(503, [e["status"] for e in self.gets()])

    def test_no_range_server_falls_back_to_one_connection(self):
        data = self.put_export(make_zip(3 * MIB, "parnorange"))
        self.srv.faults(ignore_range={"count": -1})
        r = self.mm("apply", self.plan(self.conns(4)))
        self.assert_done(data)
        self.assertIn("falling back to one connection", r.stdout + r.stderr)
        self.assertTrue(self.outputs()["crc_ok"])

    def test_kill9_then_one_connection_keeps_the_prefix(self):
        data = self.put_export(make_zip(8 * MIB, "parthenone"))
        p = self.plan(self.conns(4))
        self.srv.faults(download_bps=512 * 1024)
        proc = start(["apply", p], env=self.env)

        def lead_done():
            ck = (self.wd.state("p").get("steps", {}).get("dl") or {}).get("checkpoint") or {}
            rs = ck.get("ranges") or []
            return len(rs) >= 2 and rs[0][1] == rs[0][2] and rs[1][1] > rs[1][0]

        try:
            wait_for(lead_done, timeout=30, what="the lead range to finish")
        finally:
            kill9(proc)
        self.srv.faults(download_bps=0)
        r = self.mm("apply", self.plan(self.conns(1)))
        self.assert_done(data)
        self.assertNotIn("changed on the server", r.stdout + r.stderr)

    def start_slow_with_ranges(self):
        """apply with 4 connections on a slowed server, returned once its checkpoint holds the
        4 ranges (killed if they never come)."""
        p = self.plan(self.conns(4))
        self.srv.faults(download_bps=512 * 1024)
        proc = start(["apply", p], env=self.env)
        try:
            wait_for(lambda: len(((self.wd.state("p").get("steps", {}).get("dl") or {}).get("checkpoint") or {})
                                 .get("ranges") or []) >= 4, timeout=30, what="the ranges to be recorded")
        except AssertionError:
            kill9(proc)
            raise
        return p, proc

    def test_sigint_records_the_ranges_and_resumes(self):
        data = self.put_export(make_zip(8 * MIB, "parsigint"))
        p, proc = self.start_slow_with_ranges()
        time.sleep(0.4)  # the ranges move; the next timed checkpoint is a second after the one that planned them
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code, out, err = finish(proc)
        self.assertEqual(code, 130, out + err)
        self.assertLess(time.monotonic() - t0, 5)
        st = self.wd.state("p")["steps"]["dl"]
        self.assertEqual(st["status"], "interrupted")
        # stopping saved the ranges where they stood, not only where planning put them
        self.assertTrue(any(pos > s for s, pos, e in st["checkpoint"]["ranges"][1:]))
        self.srv.faults(download_bps=0)
        self.mm("apply", p)
        self.assert_done(data)

    def test_changed_export_between_runs(self):
        old = self.put_export(make_zip(8 * MIB, "parold"))
        p, proc = self.start_slow_with_ranges()
        kill9(proc)
        self.srv.faults(download_bps=0)
        new = self.put_export(make_zip(8 * MIB, "parnew"))  # same size, other bytes
        self.assertEqual(len(old), len(new))
        r = self.mm("apply", p)
        self.assertIn("changed on the server", r.stdout + r.stderr)
        self.assert_done(new)

    def test_damaged_range_is_healed(self):
        data = self.put_export(make_zip(6 * MIB, "parheal"))
        # one bit flipped in the stored member, in the part of the file a later range fetches
        self.srv.faults(download_corrupt={"offset": 4 * MIB + 12345, "count": 1})
        self.mm("apply", self.plan(self.conns(4)))
        self.assert_done(data)
        self.assertTrue(self.outputs()["crc_ok"])
        heals = [e for e in self.wd.journal("p") if e["event"] == "heal"]
        self.assertEqual(len(heals), 1, heals)

    def test_bad_connections_rejected(self):
        for bad in ("0", "17", "-2", "many"):
            p = self.plan(self.conns(1).replace("connections: 1", "connections: %s" % bad))
            r = self.mm("validate", p, want=2)
            text = r.stdout + r.stderr
            self.assertIn("connections", text)
            self.assertRegex(text, r":\d+:\d+")


if __name__ == "__main__":
    harness.main()
