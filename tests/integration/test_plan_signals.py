"""`mmigrate plan` stops on SIGINT (exit 130) and SIGTERM (exit 143) while
its dry-run GETs wait on a slow server, instead of reporting each step it
had left as one that "could not be evaluated" and exiting 1."""
import signal
import time
import unittest

import harness
from harness import Workdir, start, finish
from fakelib import FakeServer

SERVERS = 4
PROMPT_S = 5


class PlanSignalsTest(unittest.TestCase):
    def setUp(self):
        self.srv = FakeServer().start()
        self.addCleanup(self.srv.stop)
        # Every API request waits: the dry run takes several seconds per step.
        self.srv.faults(delay=[{"path": "^/api/v4/", "seconds": 3, "count": -1}])
        self.wd = Workdir(self)
        text = "version: 1\nname: p\nservers:\n"
        for i in range(SERVERS):
            text += "  s%d:\n    url: %s\n    token: ${env:MM_TOKEN}\n" % (i, self.srv.url)
        text += "steps:\n"
        for i in range(SERVERS):
            text += "  - {id: login%d, type: auth, server: s%d}\n" % (i, i)
        self.plan = self.wd.plan(text)

    def interrupt(self, sig, want):
        proc = start(["plan", self.plan], env={"MM_TOKEN": self.srv.admin_token})
        time.sleep(1)
        self.assertIsNone(proc.poll(), "plan finished before it could be interrupted")
        t0 = time.monotonic()
        proc.send_signal(sig)
        code, out, err = finish(proc, timeout=120)
        elapsed = time.monotonic() - t0
        self.assertEqual(code, want, "stdout:\n%s\nstderr:\n%s" % (out, err))
        self.assertLess(elapsed, PROMPT_S, "took %.1fs to stop" % elapsed)
        self.assertNotIn("could not be evaluated", err)
        self.assertNotIn("login%d" % (SERVERS - 1), out, "steps after the signal were still evaluated")
        return err

    def test_sigint_exits_130(self):
        self.assertIn("interrupted by SIGINT", self.interrupt(signal.SIGINT, 130))

    def test_sigterm_exits_143(self):
        self.assertIn("interrupted by SIGTERM", self.interrupt(signal.SIGTERM, 143))


if __name__ == "__main__":
    harness.main()
