"""`mmigrate verify ARCHIVE.zip` and the verify step through the binary:
exit statuses, text and JSON reports, the error cap, and an archive that
changed after its download was recorded."""
import json
import os
import subprocess
import sys
import unittest

import harness
from harness import Workdir, run

MKARCHIVE = os.path.join(harness.SRC, "tests", "archive", "mkarchive.py")


class VerifyCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = Workdir().path
        subprocess.run([sys.executable, MKARCHIVE, cls.dir, "valid_full", "post_unknown_channel",
                        "many_errors", "truncated", "bad_crc_attachment"], check=True)

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.dir, ignore_errors=True)

    def zip(self, name):
        return os.path.join(self.dir, name + ".zip")

    def test_valid_archive_exits_0_with_counts(self):
        r = run(["verify", self.zip("valid_full")], check_exit=0)
        self.assertRegex(r.stdout, r"Teams\s+\d+")
        j = harness.json_report(run(["verify", "--output", "json", self.zip("valid_full")], check_exit=0).stdout,
                                "verify-report")["report"]
        self.assertEqual(j["error_count"], 0)
        self.assertEqual(len(j["sha256"]), 64)
        self.assertEqual(j["size"], os.path.getsize(self.zip("valid_full")))

    def test_errors_name_archive_line_and_field_and_exit_1(self):
        r = run(["verify", self.zip("post_unknown_channel")], check_exit=1)
        self.assertRegex(r.stdout, r"post_unknown_channel\.zip->import\.jsonl:\d+: field \"post\.channel\": ")

    def test_error_cap_counts_everything(self):
        j = harness.json_report(run(["verify", "--output", "json", "--max-errors", "5", self.zip("many_errors")],
                                    check_exit=1).stdout, "verify-report")["report"]
        self.assertEqual(len(j["errors"]), 5)
        self.assertGreater(j["error_count"], 5)

    def test_broken_zips(self):
        self.assertIn("truncated", run(["verify", self.zip("truncated")], check_exit=1).stdout)
        self.assertIn("CRC", run(["verify", self.zip("bad_crc_attachment")], check_exit=1).stdout)
        r = run(["verify", os.path.join(self.dir, "nope.zip")], check_exit=1)
        self.assertIn("nope.zip", r.stderr)
        run(["verify"], check_exit=2)

    def test_step_checks_expected_digest(self):
        wd = Workdir(self)
        archive = os.path.join(wd.path, "a.zip")
        with open(self.zip("valid_full"), "rb") as f, open(archive, "wb") as g:
            g.write(f.read())
        p = wd.plan("version: 1\nname: v\nsteps:\n"
                    "  - {id: check, type: verify, archive: a.zip, sha256: %s}\n" % ("0" * 64))
        r = run(["apply", p], check_exit=1)
        self.assertIn("the plan expects " + "0" * 64, r.stderr)


if __name__ == "__main__":
    harness.main()
