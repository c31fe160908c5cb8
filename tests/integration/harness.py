"""Shared plumbing for integration tests: run the real mmigrate binary on
plans written to temporary directories, interrupt it for real, and read its
state and journal back.

Environment (set by CTest): MMIGRATE_BIN, MMIGRATE_SRC.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SRC = os.environ.get("MMIGRATE_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MMIGRATE_BIN") or os.path.join(SRC, "build", "mmigrate")
sys.path.insert(0, os.path.join(SRC, "tests", "fake"))


class Workdir:
    """A temporary directory holding a plan; removed when the test ends."""

    def __init__(self, test=None):
        self.path = tempfile.mkdtemp(prefix="mmigrate-it-")
        if test is not None:
            test.addCleanup(shutil.rmtree, self.path, True)

    def write(self, name, text):
        p = os.path.join(self.path, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        return p

    def plan(self, text, name="plan.yaml"):
        return self.write(name, text)

    def state_dir(self, plan_name):
        return os.path.join(self.path, ".mmigrate", plan_name)

    def state(self, plan_name):
        with open(os.path.join(self.state_dir(plan_name), "state.json")) as f:
            return json.load(f)

    def journal(self, plan_name):
        p = os.path.join(self.state_dir(plan_name), "journal.jsonl")
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return [json.loads(line) for line in f if line.strip()]


def run(args, env=None, cwd=None, timeout=300, check_exit=None):
    """Runs mmigrate to completion; returns CompletedProcess (text)."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([BIN] + list(args), env=e, cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check_exit is not None and p.returncode != check_exit:
        raise AssertionError("mmigrate %s exited %d, want %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(args), p.returncode, check_exit, p.stdout, p.stderr))
    return p


def start(args, env=None, cwd=None):
    """Starts mmigrate in the background (its own process group)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.Popen([BIN] + list(args), env=e, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def wait_for(predicate, timeout=60, interval=0.02, what="condition"):
    """Polls predicate until true; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s" % what)


def kill9(proc):
    """SIGKILL: no handler runs, nothing is saved on the way out. Returns
    what the process had printed (stdout + stderr)."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    out = proc.stdout.read() + proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    return out


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def journal_events(wd, plan_name, step=None):
    return [e["event"] for e in wd.journal(plan_name) if step is None or e.get("step") == step]


def assert_no_secret(test, secret, *texts):
    for t in texts:
        test.assertNotIn(secret, t)


def main():
    unittest.main(verbosity=2)
