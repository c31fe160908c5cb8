"""`mmigrate verify ARCHIVE.zip` stops at a safe point on SIGINT (exit 130)
and SIGTERM (exit 143), promptly, with no report: the check of a large
archive is worth interrupting, and it used to run to the end and exit 0."""
import os
import signal
import subprocess
import sys
import time
import unittest
import zipfile

import harness
from harness import Workdir, start, wait_for, finish

MKARCHIVE = os.path.join(harness.SRC, "tests", "archive", "mkarchive.py")
# Enough lines that the check runs for seconds even in a release build;
# they compress to a few MiB and take about a second to write.
COPIES = 1000000
PROMPT_S = 5


def make_large(base, path):
    """valid_full with its first post repeated COPIES times."""
    with zipfile.ZipFile(base) as z:
        jsonl = next(n for n in z.namelist() if n.endswith(".jsonl"))
        lines = z.read(jsonl).decode().splitlines()
        post = next(line for line in lines if '"type":"post"' in line)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
            for n in z.namelist():
                if n != jsonl:
                    out.writestr(n, z.read(n))
            with out.open(jsonl, "w") as f:
                f.write(("\n".join(lines) + "\n").encode())
                chunk = ((post + "\n") * 10000).encode()
                for _ in range(COPIES // 10000):
                    f.write(chunk)


def has_open(pid, path):
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)) == path:
                return True
        except OSError:
            pass
    return False


class VerifySignalsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = Workdir().path
        subprocess.run([sys.executable, MKARCHIVE, cls.dir, "valid_full"], check=True)
        cls.archive = os.path.join(cls.dir, "large.zip")
        make_large(os.path.join(cls.dir, "valid_full.zip"), cls.archive)

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.dir, ignore_errors=True)

    def interrupt(self, sig, want):
        proc = start(["verify", self.archive])
        # Inside the check (handlers installed long before), not merely started.
        wait_for(lambda: has_open(proc.pid, self.archive), timeout=60, what="verify to open the archive")
        time.sleep(0.2)
        self.assertIsNone(proc.poll(), "the check finished before it could be interrupted")
        t0 = time.monotonic()
        proc.send_signal(sig)
        code, out, err = finish(proc, timeout=300)
        elapsed = time.monotonic() - t0
        self.assertEqual(code, want, "stdout:\n%s\nstderr:\n%s" % (out[-2000:], err[-2000:]))
        self.assertLess(elapsed, PROMPT_S, "took %.1fs to stop" % elapsed)
        self.assertEqual(out, "", "an interrupted check prints no report")
        self.assertIn("interrupted", err)
        return err

    def test_sigint_exits_130(self):
        err = self.interrupt(signal.SIGINT, 130)
        self.assertIn("SIGINT", err)

    def test_sigterm_exits_143(self):
        err = self.interrupt(signal.SIGTERM, 143)
        self.assertIn("SIGTERM", err)


if __name__ == "__main__":
    harness.main()
