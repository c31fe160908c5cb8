#!/usr/bin/env python3
"""Upload benchmark: mmigrate's upload step against the curl CLI, both
sending the same file into an import upload session of the same fake
server (tests/fake/mmfake.py, Python, on 127.0.0.1), measured in the same
run, alternately (A B A B ...) so that the ratio holds while the machine's
speed drifts.

    python3 bench/upload/run.py [--size-mib 512] [--runs 5] [--bin build-rel/mmigrate]
                                [--resume] [--rate] [--json FILE]

Figures: median wall seconds, MiB/s and peak RSS of each; the median of the
per-pair ratios mmigrate/curl. --resume kills mmigrate with SIGKILL at 10 %,
50 % and 90 % of the upload and reports the bytes the server received beyond
the file size (resent bytes, from the fake's request log). --rate runs the
upload with rate_limit and reports achieved/requested.

The peer is one streaming `curl -X POST -T FILE` into a session the harness
created beforehand (so curl's figure leaves out the session's creation, which
mmigrate's includes), with `Expect:` removed so curl does not wait for a
100 Continue the server never sends. Not part of CTest: it moves gigabytes.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "fake"))
from fakelib import FakeServer  # noqa: E402

MIB = 1 << 20

PLAN = """version: 1
name: bench-upload
servers:
  mm: {url: "${env:MM_URL}", token: "${env:MM_TOKEN}"}
steps:
%s  - id: up
    type: upload
    server: mm
    file: "%s"
%s"""
# The two ways the upload step learns the file's SHA-256 (docs/performance.md):
# from a verify step that checked this very file (the upload only reads it to
# send it), or while sending, for a file no step checked (unverified: true).
VERIFY = '  - {id: check, type: verify, archive: "%s"}\n'
UNVERIFIED = "    unverified: true\n"


def make_file(path, size):
    """A valid import archive of `size` bytes, its bulk one stored entry of
    incompressible bytes: written once and reused by every run."""
    block = os.urandom(MIB)
    head = '{"type":"version","version":1}\n'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr("import.jsonl", head)
        with z.open("data/blob.bin", "w", force_zip64=True) as f:
            for _ in range(max(size - 4096, 0) // MIB):
                f.write(block)


def timed(argv, env=None, cwd=None):
    """Wall seconds and peak RSS in KiB of one child. The peak comes from
    GNU time's %M, the child's own ru_maxrss after exec (Python's vfork
    would charge the child with this interpreter's pages)."""
    rss_file = tempfile.mktemp(prefix="mmbench-rss-")
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-o", rss_file, "-f", "%M"] + argv, env=env, cwd=cwd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.monotonic() - t0
    try:
        with open(rss_file) as f:
            rss = int(f.read().split()[-1])
    finally:
        os.unlink(rss_file)
    if p.returncode != 0:
        raise SystemExit("%s failed: %s" % (argv[0], p.stderr.decode(errors="replace")[-2000:]))
    return wall, rss


class Bench:
    def __init__(self, srv, work, binary, path, size):
        self.srv, self.work, self.bin, self.path, self.size = srv, work, binary, path, size
        self.env = dict(os.environ, MM_URL=srv.url, MM_TOKEN=srv.admin_token)
        self.hdr = os.path.join(work, "auth.hdr")
        with open(self.hdr, "w") as f:   # curl reads the token from a file: never in ps
            f.write("Authorization: Bearer %s\n" % srv.admin_token)
        os.chmod(self.hdr, 0o600)

    def plan(self, extra=UNVERIFIED, before=""):
        path = os.path.join(self.work, "plan.yaml")
        with open(path, "w") as f:
            f.write(PLAN % (before, self.path, extra))
        shutil.rmtree(os.path.join(self.work, ".mmigrate"), ignore_errors=True)
        return path

    def clean_imports(self):
        d = self.srv.import_dir
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))

    def ours(self, extra=UNVERIFIED):
        plan = self.plan(extra)
        try:
            return timed([self.bin, "apply", "--quiet", plan], env=self.env, cwd=self.work)
        finally:
            self.clean_imports()

    def ours_verified(self):
        """The upload alone, its digest known from the verify step of an
        earlier apply (only the upload step is reset between runs)."""
        plan = os.path.join(self.work, "plan.yaml")
        if not os.path.exists(os.path.join(self.work, ".mmigrate")) or "check" not in open(plan).read():
            plan = self.plan("", VERIFY % self.path)
        else:
            subprocess.run([self.bin, "reset", "--quiet", plan, "up"], env=self.env, cwd=self.work, check=True)
        try:
            return timed([self.bin, "apply", "--quiet", plan], env=self.env, cwd=self.work)
        finally:
            self.clean_imports()

    def session(self):
        r = self.srv.request("POST", "/uploads", {"type": "import", "filename": "curl.zip",
                                                  "file_size": self.size})
        if r.status != 201:
            raise SystemExit("cannot create an upload session: %s %r" % (r.status, r.body[:200]))
        return r.json()["id"]

    def curl(self):
        url = "%s/api/v4/uploads/%s" % (self.srv.url, self.session())
        try:
            return timed(["curl", "-sSf", "-o", "/dev/null", "-X", "POST", "-H", "@" + self.hdr,
                          "-H", "Expect:", "-H", "Content-Type: application/octet-stream",
                          "-T", self.path, url])
        finally:
            self.clean_imports()


def compare(b, runs, ours_run):
    """A B A B ...: per-pair ratios, medians."""
    ours, peer, ratios = [], [], []
    ours_run()  # warm-up: page cache, server (and the verify step's record)
    for _ in range(runs):
        o = ours_run()
        p = b.curl()
        ours.append(o)
        peer.append(p)
        ratios.append(o[0] / p[0])
    mib = b.size / MIB
    med = lambda xs: statistics.median(xs)  # noqa: E731
    return {
        "size_mib": mib, "runs": runs,
        "ours_s": med([t for t, _ in ours]), "curl_s": med([t for t, _ in peer]),
        "ours_mibs": mib / med([t for t, _ in ours]), "curl_mibs": mib / med([t for t, _ in peer]),
        "ours_rss_mib": max(r for _, r in ours) / 1024, "curl_rss_mib": max(r for _, r in peer) / 1024,
        "throughput_ratio": med([1 / r for r in ratios]),  # mmigrate MiB/s over curl MiB/s
        "time_ratio_min": min(ratios), "time_ratio_max": max(ratios),
    }


def received_bytes(srv, since):
    """Body bytes the fake read for POST /uploads/{id} since log seq `since`."""
    return sum(e.get("request_bytes") or 0 for e in srv.log(since=since)
               if e["method"] == "POST" and e["path"].startswith("/api/v4/uploads/"))


def session_offset(srv):
    """Bytes the fake has written: its .tmp file grows while a body arrives."""
    d = srv.import_dir
    return max([os.path.getsize(os.path.join(d, n)) for n in os.listdir(d) if n.endswith(".tmp")] or [0])


def resume_waste(b, fraction, bps):
    """Kill -9 mmigrate once the server holds `fraction` of the file, apply
    again, and count what the server received beyond the file's size."""
    plan = b.plan()
    b.srv.faults(upload_bps=bps)  # slow enough to aim the kill
    seq = max([e["seq"] for e in b.srv.log(since=0)] or [0])
    p = subprocess.Popen([b.bin, "apply", "--quiet", plan], env=b.env, cwd=b.work,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while session_offset(b.srv) < fraction * b.size and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    at = session_offset(b.srv)
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 30  # until the fake is done with the cut request
    while time.monotonic() < deadline:
        ups = b.srv.request("GET", "/__fake/uploads").json()
        if ups and ups[0]["file_offset"] == session_offset(b.srv):
            break
        time.sleep(0.05)
    b.srv.faults(upload_bps=0)
    r = subprocess.run([b.bin, "apply", "--quiet", plan], env=b.env, cwd=b.work,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode:
        raise SystemExit("resume failed: " + r.stderr.decode(errors="replace")[-2000:])
    got = received_bytes(b.srv, seq)
    b.clean_imports()
    return {"fraction": fraction, "killed_at": at, "received": got, "waste": got - b.size}


def rate(b, mbps):
    """Achieved rate of an upload capped at mbps MB/s (10^6), whole process."""
    t, _ = b.ours(UNVERIFIED + "    rate_limit: %dMB/s\n" % mbps)
    return {"cap_mbs": mbps, "achieved_mbs": b.size / t / 1e6, "accuracy": b.size / t / 1e6 / mbps}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin", default=os.path.join(SRC, "build-rel", "mmigrate"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--rate", type=int, default=0, help="cap in MB/s for the rate check (0: skip)")
    ap.add_argument("--no-compare", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    if not shutil.which("curl"):
        raise SystemExit("the curl CLI is needed as the peer: apt-get install curl")
    work = tempfile.mkdtemp(prefix="mmigrate-bench-up-")
    work_dirs = [work]
    out = {}
    try:
        path = os.path.join(work, "archive.zip")
        make_file(path, a.size_mib * MIB)
        size = os.path.getsize(path)
        # The server's disk is not the client's: on a migration the upload lands on
        # another machine. Sharing one disk here would make every fsync of
        # mmigrate's state wait for the fake's gigabyte of dirty import data
        # (ext4 commits it in the same journal transaction); tmpfs avoids that.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        server_dir = tempfile.mkdtemp(prefix="mmigrate-bench-up-srv-", dir=shm)
        work_dirs.append(server_dir)
        with FakeServer(seed="none", max_file_size=size + MIB, state_dir=server_dir) as srv:
            b = Bench(srv, work, a.bin, path, size)
            if not a.no_compare:
                for key, how, fn in (("compare_known", "digest known from a verify step", b.ours_verified),
                                     ("compare", "hashed while sent (unverified: true)", b.ours)):
                    out[key] = c = compare(b, a.runs, fn)
                    print("upload %.0f MiB, %s, %d pairs: mmigrate %.2f s (%.0f MiB/s, peak %.1f MiB), "
                          "curl %.2f s (%.0f MiB/s, peak %.1f MiB); throughput ratio %.2fx" %
                          (c["size_mib"], how, c["runs"], c["ours_s"], c["ours_mibs"], c["ours_rss_mib"],
                           c["curl_s"], c["curl_mibs"], c["curl_rss_mib"], c["throughput_ratio"]))
            if a.resume:
                bps = max(size // 8, 4 * MIB)  # about 8 s per upload: room to aim
                out["resume"] = [resume_waste(b, f, bps) for f in (0.1, 0.5, 0.9)]
                for r in out["resume"]:
                    print("kill -9 at %d%% (server held %d): resent %d bytes" %
                          (r["fraction"] * 100, r["killed_at"], r["waste"]))
            if a.rate:
                out["rate"] = r = rate(b, a.rate)
                print("rate_limit %d MB/s: achieved %.2f MB/s (%.1f%%)" %
                      (r["cap_mbs"], r["achieved_mbs"], r["accuracy"] * 100))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)
    finally:
        for d in work_dirs:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
