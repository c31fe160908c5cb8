"""The exec step's child starts clean and never outlives mmigrate: no
descriptor beyond 0-2 (not even libcurl's keep-alive socket to the server an
earlier step talked to), SIGPIPE back at its default though mmigrate ignores
it, an empty signal mask, its own process group; killed with mmigrate
(kill -9) and stopped as a group on SIGTERM (exit 143)."""
import os
import signal
import sys
import time
import unittest

import harness
from harness import Workdir, run, start, kill9, wait_for, finish
from fakelib import FakeServer

HEAD = """version: 1
name: p
servers:
  mm:
    url: {url}
    token: ${{env:MM_TOKEN}}
steps:
  - {{id: login, type: auth, server: mm}}
"""

# Run by /bin/sh -c as the child itself: its signal state read with
# builtins first (dash blocks every signal around each fork, so a grep run
# from it may catch the shell with a full mask), its group through /proc/$$,
# its descriptors through a program it starts (the shell keeps private ones
# of its own for redirections, close-on-exec).
REPORT = ("while read -r k v; do case $k in SigIgn:|SigBlk:) echo \"$k$v\";; esac; "
          "done < /proc/$$/status > sig.txt; "
          "cut -d' ' -f5 /proc/$$/stat > pgid.txt; echo $$ > pid.txt; {python} fds.py fds.txt")

# Lists the descriptors still open once listdir's own is closed again.
FDS_PY = """import os, sys
names = os.listdir("/proc/self/fd")
left = []
for n in sorted(int(x) for x in names):
    try:
        os.fstat(n)
        left.append(n)
    except OSError:
        pass
with open(sys.argv[1], "w") as f:
    f.write(" ".join(map(str, left)))
"""

SIGPIPE_BIT = 1 << (signal.SIGPIPE - 1)


def alive(pid):
    """A zombie is as dead as it gets for a process whose parent is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class ExecChildTest(unittest.TestCase):
    def setUp(self):
        self.srv = FakeServer().start()
        self.addCleanup(self.srv.stop)
        self.wd = Workdir(self)
        self.env = {"MM_TOKEN": self.srv.admin_token}

    def plan(self, command, timeout="1h"):
        # YAML single quotes: the command's own quotes and $ stay as written.
        return self.wd.plan(HEAD.format(url=self.srv.url) +
                            "  - {id: child, type: exec, timeout: %s, command: '%s'}\n"
                            % (timeout, command.replace("'", "''")))

    def read(self, name):
        with open(os.path.join(self.wd.path, name)) as f:
            return f.read()

    def pid_file(self, name):
        return int(self.read(name).strip())

    def test_child_inherits_no_descriptor_no_ignored_signal_and_gets_its_own_group(self):
        self.wd.write("fds.py", FDS_PY)
        p = self.plan(REPORT.format(python=sys.executable))
        proc = start(["apply", p], env=self.env, cwd=self.wd.path)
        code, out, err = finish(proc)
        self.assertEqual(code, 0, out + err)
        # The auth step really talked to the server before the child started.
        self.assertTrue(any(e["path"].startswith("/api/v4/users/me") for e in self.srv.log(0)),
                        self.srv.log(0))
        fds = [int(x) for x in self.read("fds.txt").split()]
        self.assertEqual(fds, [0, 1, 2], "descriptors inherited by the child")
        sig = dict(line.split(":") for line in self.read("sig.txt").splitlines())
        self.assertEqual(int(sig["SigIgn"], 16) & SIGPIPE_BIT, 0, "SIGPIPE still ignored in the child")
        self.assertEqual(int(sig["SigIgn"], 16), 0, "signals ignored in the child: %s" % sig["SigIgn"])
        self.assertEqual(int(sig["SigBlk"], 16), 0, "signals blocked in the child")
        child, pgid = self.pid_file("pid.txt"), self.pid_file("pgid.txt")
        self.assertEqual(pgid, child, "the child leads its own process group")
        self.assertNotEqual(pgid, proc.pid, "the child shares mmigrate's process group")

    def test_child_dies_with_mmigrate(self):
        p = self.plan("echo $$ > pid.txt; exec sleep 60")
        proc = start(["apply", p], env=self.env, cwd=self.wd.path)
        wait_for(lambda: self.read("pid.txt").strip(), timeout=60, what="the child to start")
        child = self.pid_file("pid.txt")
        self.addCleanup(kill_group, child)
        self.assertTrue(alive(child))
        kill9(proc)
        wait_for(lambda: not alive(child), timeout=5, what="the child to die with mmigrate")

    def test_sigterm_stops_the_child_process_group_and_exits_143(self):
        # The shell traps TERM, so its note proves SIGTERM came first, not only SIGKILL.
        p = self.plan("trap 'echo term > term.txt; exit 0' TERM; sleep 60 & echo $! > sleep.txt; "
                      "echo $$ > pid.txt; wait")
        proc = start(["apply", p], env=self.env, cwd=self.wd.path)
        wait_for(lambda: self.read("pid.txt").strip(), timeout=60, what="the child to start")
        child, sleeper = self.pid_file("pid.txt"), self.pid_file("sleep.txt")
        self.addCleanup(kill_group, child)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code, out, err = finish(proc, timeout=30)
        self.assertEqual(code, 143, out + err)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(self.read("term.txt").strip(), "term")
        wait_for(lambda: not alive(child) and not alive(sleeper), timeout=5,
                 what="the child's process group to be gone")
        self.assertIn("interrupted", self.wd.state("p")["steps"]["child"]["status"])


if __name__ == "__main__":
    harness.main()
