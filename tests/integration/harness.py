"""Shared plumbing for integration tests: run the real mmigrate binary on
plans written to temporary directories, interrupt it for real, and read its
state and journal back.

Environment (set by CTest): MMIGRATE_BIN, MMIGRATE_SRC, MMIGRATE_TEST_ROOT.

Secret canaries: unless a test sets its own, every fake server's passwords
and tokens are recognisable canaries ("CANARY-..."). Every mmigrate run's
output, and every file a Workdir holds when its test ends (state, journal,
artefacts, temp files) is checked for them; tests/integration/canary_sweep.py
scans MMIGRATE_TEST_ROOT, where every test keeps its temporary files, last.
"""
import json
import os
import secrets
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

# One root for every temporary file the tests make, so the last check can scan it.
TEST_ROOT = os.environ.get("MMIGRATE_TEST_ROOT") or os.path.join(tempfile.gettempdir(), "mmigrate-tests")
os.makedirs(TEST_ROOT, exist_ok=True)
tempfile.tempdir = TEST_ROOT

CANARY = "CANARY-"
for _var, _kind in (("MMFAKE_ADMIN_PASSWORD", "pw"), ("MMFAKE_ADMIN_TOKEN", "tok"),
                    ("MMFAKE_USER_PASSWORD", "pw"), ("MMFAKE_USER_TOKEN", "tok"),
                    ("MMFAKE_MFA_PASSWORD", "pw")):
    os.environ.setdefault(_var, "%s%s-%s" % (CANARY, _kind, secrets.token_hex(8)))


def check_no_canary(text, where):
    """Fails when a canary credential appears in text (str or bytes)."""
    needle = CANARY.encode() if isinstance(text, bytes) else CANARY
    if text and needle in text:
        i = text.index(needle)
        raise AssertionError("secret canary leaked into %s: ...%r..." % (where, text[max(0, i - 80):i + 60]))


def scan_tree_for_canaries(root, skip=()):
    """Every file under root except the paths in skip (files the test wrote
    itself, the fake server's own credentials file)."""
    for d, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            if p in skip or name == "credentials.json" or os.path.islink(p):
                continue
            try:
                with open(p, "rb") as f:
                    check_no_canary(f.read(), p)
            except OSError:
                pass


class Workdir:
    """A temporary directory holding a plan; removed when the test ends."""

    def __init__(self, test=None):
        self.path = tempfile.mkdtemp(prefix="mmigrate-it-")
        self.written = set()
        if test is not None:
            test.addCleanup(self.cleanup)

    def cleanup(self):
        """Scans what the test leaves for canaries, then removes it."""
        try:
            scan_tree_for_canaries(self.path, self.written)
        finally:
            shutil.rmtree(self.path, True)

    def write(self, name, text):
        p = os.path.join(self.path, name)
        self.written.add(p)
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
    check_no_canary(p.stdout, "stdout of mmigrate %s" % " ".join(args))
    check_no_canary(p.stderr, "stderr of mmigrate %s" % " ".join(args))
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
    check_no_canary(out, "output of a killed mmigrate")
    return out


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    check_no_canary(out, "stdout of mmigrate")
    check_no_canary(err, "stderr of mmigrate")
    return proc.returncode, out, err


def journal_events(wd, plan_name, step=None):
    return [e["event"] for e in wd.journal(plan_name) if step is None or e.get("step") == step]


def json_report(stdout, event):
    """The one `event` (status-report, log-report, verify-report) of an --output json
    stream, after checking that every line is an object and the last is the summary."""
    events = [json.loads(line) for line in stdout.splitlines()]
    if not events or events[-1].get("event") != "summary":
        raise AssertionError("--output json did not end with a summary event:\n" + stdout)
    found = [e for e in events if e.get("event") == event]
    if len(found) != 1:
        raise AssertionError("want one %s event, got %d:\n%s" % (event, len(found), stdout))
    return found[0]


def assert_no_secret(test, secret, *texts):
    for t in texts:
        test.assertNotIn(secret, t)


def main():
    unittest.main(verbosity=2)
