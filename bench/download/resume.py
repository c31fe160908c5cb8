#!/usr/bin/env python3
"""Download resume waste: kill -9 mmigrate's download step at 10 %, 50 % and
90 % of an export, apply again, and count the bytes of the .part that the
resumed run fetched again (its first Range start against what the .part
held after the kill), and the bytes the server sent beyond the export's size
in all (which adds what was in flight in the socket buffers when the process
died: lost for any client), from the fake's request log.

    python3 bench/download/resume.py [--size-mib 256] [--bin build/mmigrate] [--json FILE]

The target (docs/performance.md): at most 1 MiB re-sent per interruption.
Not part of CTest (test_download proves the resume itself, without sizes).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "fake"))
from fakelib import FakeServer  # noqa: E402
from run import PLAN, make_export  # noqa: E402

MIB = 1 << 20


def served(srv, since, name):
    """Body bytes the fake sent for GETs of the export since log seq `since`."""
    return sum(e.get("response_bytes") or 0 for e in srv.log(since=since)
               if e["method"] == "GET" and name in e["path"])


def last_seq(srv):
    return max([e["seq"] for e in srv.log(since=0)] or [0])


def waste_at(srv, binary, work, name, size, fraction):
    plan = os.path.join(work, "plan.yaml")
    with open(plan, "w") as f:
        f.write(PLAN % name)
    shutil.rmtree(os.path.join(work, ".mmigrate"), ignore_errors=True)  # state, .part and file
    env = dict(os.environ, MM_URL=srv.url, MM_TOKEN=srv.admin_token)
    out = os.path.join(work, ".mmigrate", "bench", "out.zip")  # a relative path lives in the state dir
    part = out + ".part"
    seq = last_seq(srv)
    srv.faults(download_bps=max(size // 8, 4 * MIB))  # about 8 s for the whole: room to aim
    p = subprocess.Popen([binary, "apply", "--quiet", plan], env=env, cwd=work,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while p.poll() is None and time.monotonic() < deadline:
        if os.path.exists(part) and os.path.getsize(part) >= fraction * size:
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    held = os.path.getsize(part) if os.path.exists(part) else 0
    srv.clear_faults()
    time.sleep(0.5)  # the fake notices the dead connection and logs it
    resumed = last_seq(srv)
    r = subprocess.run([binary, "apply", "--quiet", plan], env=env, cwd=work,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode:
        raise SystemExit("resume failed: " + r.stderr.decode(errors="replace")[-2000:])
    if os.path.getsize(out) != size:
        raise SystemExit("the resumed download has the wrong size")
    got = served(srv, seq, name)
    starts = [int(e["headers"]["range"].split("=")[1].split("-")[0]) for e in srv.log(since=resumed)
              if e["method"] == "GET" and name in e["path"] and e["headers"].get("range")]
    again = held - min(starts) if starts else held
    return {"fraction": fraction, "killed_at": held, "served": got, "waste": again,
            "served_beyond": got - size}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--bin", default=os.path.join(SRC, "build", "mmigrate"))
    ap.add_argument("--json")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mmigrate-bench-dlresume-")
    try:
        with FakeServer(seed="none") as srv:
            name = "benchresumebenchresume00_export.zip"
            src = os.path.join(srv.export_dir, name)
            make_export(src, a.size_mib * MIB)
            size = os.path.getsize(src)
            out = [waste_at(srv, a.bin, work, name, size, f) for f in (0.1, 0.5, 0.9)]
        for r in out:
            print("download kill -9 at %d%% (.part held %d): %d bytes of it fetched again; the server "
                  "sent %d bytes beyond the size (with what was in the socket buffers at the kill)" %
                  (r["fraction"] * 100, r["killed_at"], r["waste"], r["served_beyond"]))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"resume": out}, f, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
