"""The archive proven whole before it leaves the machine, against tests/fake/mmfake.py.

The fake flips one bit of one download stream (fault `download_corrupt`):
in the first entry, the middle one, the last one, the central directory.
Each time the download step's streaming zip check finds the damaged range,
fetches it again with a closed Range, and the file ends byte-identical to
the server's (SHA-256 compared). Corruption on every fetch fails naming the
entry; a kill -9 in the middle of a heal resumes; a body longer than its
Content-Range is cut; an upload of a file no step proved whole is refused
before any request reaches the target.
"""
import io
import os
import time
import unittest
import zipfile

import harness
from harness import Workdir, run, start, kill9, wait_for
from fakelib import FakeServer
from test_download import DownloadCase, HEAD, MIB, sha


def make_export(entries=4, size=MIB):
    """A zip like an export: a JSONL, then stored attachments of random bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("import.jsonl", (2024, 1, 1, 0, 0, 0)),
                    '{"type":"version","version":1}\n' * 2000, compress_type=zipfile.ZIP_DEFLATED)
        for i in range(entries):
            zf.writestr(zipfile.ZipInfo("data/attachment-%d.log" % i, (2024, 1, 1, 0, 0, 0)),
                        os.urandom(size), compress_type=zipfile.ZIP_STORED)
    data = buf.getvalue()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        cd = zf.start_dir
    return data, infos, cd


class Heal(DownloadCase):
    def heal(self, offset, data):
        self.put_export(data)
        # No probe before the transfer: the first answer carries the flipped byte.
        self.srv.faults(download_corrupt={"offset": offset, "count": 1})
        r = self.mm("apply", self.plan(self.step()))
        self.assert_done(data)
        out = self.wd.state("p")["steps"]["dl"]["outputs"]
        self.assertTrue(out["crc_ok"])
        heals = [e for e in self.wd.journal("p") if e["event"] == "heal"]
        self.assertEqual(len(heals), 1, heals)
        h = heals[0]["details"]
        self.assertTrue(h["start"] <= offset < h["end"], h)
        ranged = [e for e in self.gets() if e["headers"].get("range") == "bytes=%d-%d" % (h["start"], h["end"] - 1)]
        self.assertEqual(len(ranged), 1)
        self.assertEqual(ranged[0]["response_bytes"], h["end"] - h["start"])
        self.assertTrue([e for e in self.gets() if e.get("fault") == "download_corrupt"])
        return h, r

    def test_first_entry(self):
        data, infos, cd = make_export()
        h, _ = self.heal(infos[0].header_offset + 200, data)
        self.assertEqual(h["entry"], "import.jsonl")

    def test_middle_entry(self):
        data, infos, cd = make_export()
        mid = infos[2]
        h, r = self.heal(mid.header_offset + 30 + len(mid.filename) + MIB // 2, data)
        self.assertEqual(h["entry"], mid.filename)
        self.assertIn("CRC-32 mismatch", r.stdout + r.stderr)
        # only the damaged entry is fetched again
        self.assertLess(h["end"] - h["start"], MIB + 4096)

    def test_last_entry(self):
        data, infos, cd = make_export()
        last = infos[-1]
        h, _ = self.heal(last.header_offset + 30 + len(last.filename) + 7, data)
        self.assertEqual(h["entry"], last.filename)

    def test_central_directory(self):
        data, infos, cd = make_export()
        h, _ = self.heal(cd + 100, data)
        self.assertEqual(h["end"], len(data))

    def test_corruption_on_every_fetch_fails_clearly(self):
        data, infos, cd = make_export(entries=3, size=256 * 1024)
        self.put_export(data)
        mid = infos[1]
        self.srv.faults(download_corrupt={"offset": mid.header_offset + 100, "count": -1})
        r = self.mm("apply", self.plan(self.step()), want=1)
        text = r.stdout + r.stderr
        self.assertIn(mid.filename, text)
        self.assertIn("bytes %d-" % mid.header_offset, text)
        self.assertIn("fetched that range again 3 times", text)
        self.assertFalse(os.path.exists(self.target()))
        self.assertEqual(len([e for e in self.wd.journal("p") if e["event"] == "heal"]), 3)

    def test_kill9_in_the_middle_of_a_heal_resumes(self):
        data, infos, cd = make_export(entries=4, size=MIB)
        self.put_export(data)
        mid = infos[2]
        self.srv.faults(download_corrupt={"offset": mid.header_offset + 900 * 1024, "count": 1},
                        slow_ranges={"bps": 64 * 1024, "count": 1})
        p = self.plan(self.step())
        proc = start(["apply", p], env=self.env)
        try:
            wait_for(lambda: [e for e in self.wd.journal("p") if e["event"] == "heal"], timeout=60,
                     what="a heal to start")
            time.sleep(1.5)  # the slow ranged answer is streaming now
        finally:
            kill9(proc)
        self.assertTrue(os.path.exists(self.target() + ".part"))
        self.mm("apply", p)
        self.assert_done(data)
        self.assertGreaterEqual(len([e for e in self.wd.journal("p") if e["event"] == "heal"]), 2)

    def test_oversize_body_is_capped(self):
        data, infos, cd = make_export(entries=3, size=MIB)
        self.put_export(data)
        # The first answer is cut; the ranged one that resumes sends 8 MiB too many.
        self.srv.faults(download_drop={"after_bytes": MIB, "count": 1}, oversize={"bytes": 8 * MIB, "count": 1})
        r = self.mm("apply", self.plan(self.step()))
        self.assert_done(data)
        self.assertTrue([e for e in self.gets() if e.get("fault") == "oversize"])
        self.assertIn("more than", r.stdout + r.stderr)


class NoUnverifiedUpload(unittest.TestCase):
    def setUp(self):
        self.srv = FakeServer().start()
        self.addCleanup(self.srv.stop)
        self.wd = Workdir(self)
        self.env = {"SRC_TOKEN": self.srv.admin_token}

    def test_refused_before_any_request(self):
        data, _, _ = make_export(entries=1, size=1024)
        path = self.wd.write("outside.zip", "")
        with open(path, "wb") as f:
            f.write(data)
        p = self.wd.plan(HEAD.format(name="u", url=self.srv.url) +
                         "  - {id: upload, type: upload, server: src, file: outside.zip}\n")
        seq = self.srv.log()[-1]["seq"] if self.srv.log() else 0
        # Caught by validate (exit 2): no download or verify step could prove it.
        r = run(["apply", p], env=self.env, check_exit=2)
        text = r.stdout + r.stderr
        self.assertIn("refusing to upload", text)
        self.assertIn("type: verify", text)
        self.assertEqual(self.srv.log(seq), [])
        # plan shows the explicit opt-out
        p2 = self.wd.plan(HEAD.format(name="u2", url=self.srv.url) +
                          "  - {id: upload, type: upload, server: src, file: outside.zip, unverified: true}\n",
                          name="plan2.yaml")
        r = run(["plan", p2], env=self.env)
        self.assertIn("UNVERIFIED", r.stdout)


if __name__ == "__main__":
    harness.main()
