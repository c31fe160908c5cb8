#!/usr/bin/env python3
"""Benchmarks the archive validator against `unzip -tq` and `jq empty`.

    bench/verify/run.py [--dir DIR] [--runs N] [--keep] [-- GEN_ARGS...]

Builds bench/verify/verify_bench.c (-O2, no sanitizers) with the validator's
sources, generates a realistic archive with gen.py (>= 1 GiB, >= 2M lines,
attachments) unless DIR already holds one, extracts its JSONL, then in the
same run times, interleaved, N times each (the median counts):

    jq empty import.jsonl          vs  verify_bench jsonl import.jsonl
    unzip -tq bench.zip            vs  verify_bench zip bench.zip

Peak memory is each child's ru_maxrss, from wait4. Targets: the JSONL check
at least 2x the throughput of `jq empty`, the whole archive check within 1.5x
the time of `unzip -tq`. Exits 1 when a target is missed. Not part of CTest:
it needs ~3 GB of disk and a few minutes. DIR is removed afterwards unless --keep.
"""
import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
ENGINE = os.path.join(SRC, "engine")


def build(out):
    srcs = [os.path.join(HERE, "verify_bench.c")] + [
        os.path.join(ENGINE, f) for f in ("archive/archive.c", "archive/bulkline.c", "archive/zipstream.c",
                                          "util/buf.c", "util/error.c", "util/hash.c", "util/util.c")]
    pc = subprocess.run(["pkg-config", "--cflags", "--libs", "libzip", "libcjson", "libcrypto", "zlib"],
                        check=True, capture_output=True, text=True).stdout.split()
    cmd = [os.environ.get("CC", "cc"), "-O2", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE",
           "-DNDEBUG", "-I" + os.path.join(ENGINE, "archive"), "-I" + os.path.join(ENGINE, "util"), *srcs, *pc, "-lpthread", "-lm", "-o", out]
    subprocess.run(cmd, check=True)


def measure_rss(cmd, ok=(0,)):
    """Like measure, with the child's own peak RSS from wait4."""
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        out = os.open(measure_rss.stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(fd, 2)
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        sys.exit("%s failed (%d)" % (" ".join(cmd), code))
    with open(measure_rss.stdout) as f:
        out = f.read()
    return wall, ru.ru_maxrss / 1024, out


def warm(path):
    with open(path, "rb") as f:
        while f.read(8 << 20):
            pass


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(8 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/tmp/mm-verify-bench")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("gen_args", nargs="*")
    a = ap.parse_args()

    os.makedirs(a.dir, exist_ok=True)
    exe = os.path.join(a.dir, "verify_bench")
    zpath = os.path.join(a.dir, "bench.zip")
    jpath = os.path.join(a.dir, "import.jsonl")
    measure_rss.stdout = os.path.join(a.dir, "stdout.txt")
    try:
        build(exe)
        if not os.path.exists(zpath):
            t = time.monotonic()
            subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), zpath, *a.gen_args], check=True)
            print("generated in %.0f s" % (time.monotonic() - t))
        if not os.path.exists(jpath):
            with open(jpath, "wb") as f:
                subprocess.run(["unzip", "-p", zpath, "import.jsonl"], stdout=f, check=True)
        zsize, jsize = os.path.getsize(zpath), os.path.getsize(jpath)
        warm(zpath)
        warm(jpath)

        runs = {"jq": [], "ours_jsonl": [], "unzip": [], "ours_zip": []}
        rss = {k: 0.0 for k in runs}
        report = None
        for _ in range(a.runs):
            for key, cmd in (("jq", ["jq", "empty", jpath]),
                             ("ours_jsonl", [exe, "jsonl", jpath]),
                             ("unzip", ["unzip", "-tq", zpath]),
                             ("ours_zip", [exe, "zip", zpath])):
                wall, mib, out = measure_rss(cmd)
                runs[key].append(wall)
                rss[key] = max(rss[key], mib)
                if key == "ours_zip":
                    report = json.loads(out)
        med = {k: statistics.median(v) for k, v in runs.items()}

        print("archive %s: %.2f GiB, JSONL %.2f GiB, %d lines, %d attachments, %d errors, %d unused"
              % (zpath, zsize / 2**30, jsize / 2**30, report["lines"], report["attachments"],
                 report["errors"], report["unused"]))
        if report["sha256"] != sha256_file(zpath):
            sys.exit("SHA-256 mismatch: %s" % report["sha256"])
        print("sha256 %s (matches hashlib)" % report["sha256"])
        print("%-34s %9s %10s %10s" % ("median of %d runs" % a.runs, "seconds", "MB/s", "peak MiB"))
        for key, label, size in (("jq", "jq empty import.jsonl", jsize),
                                 ("ours_jsonl", "verify_bench jsonl import.jsonl", jsize),
                                 ("unzip", "unzip -tq bench.zip", zsize),
                                 ("ours_zip", "verify_bench zip bench.zip", zsize)):
            print("%-34s %9.2f %10.1f %10.1f" % (label, med[key], size / med[key] / 1e6, rss[key]))
        jsonl_ratio = med["jq"] / med["ours_jsonl"]
        zip_ratio = med["ours_zip"] / med["unzip"]
        print("JSONL: %.2fx the throughput of jq empty (target >= 2)" % jsonl_ratio)
        print("archive: %.2fx the time of unzip -tq (target <= 1.5)" % zip_ratio)
        return 0 if jsonl_ratio >= 2 and zip_ratio <= 1.5 else 1
    finally:
        if not a.keep:
            shutil.rmtree(a.dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
