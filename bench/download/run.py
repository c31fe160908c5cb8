#!/usr/bin/env python3
"""Download benchmark: mmigrate's download step against the curl CLI, on the
same export served by the same fake server, measured in the same run.

    python3 bench/download/run.py [--size-mib 512] [--runs 3] [--bin build/mmigrate]
    python3 bench/download/run.py --connections 4 [--limit-rate 20m] [--size-mib 256]

Reports the median wall time, throughput and peak RSS of each, and the
ratio mmigrate/curl. The target: within 1.25x of curl's time with constant
memory (peak RSS independent of the file size). Not part of CTest: it moves
gigabytes. Everything runs on 127.0.0.1 and is deleted afterwards.

With --connections N the file is served by nginx (the Debian package) with
`limit_rate` per connection, as a CDN or a proxy paces each connection, and
mmigrate with one connection, mmigrate with `connections: N` and
`aria2c -xN -sN` (the Debian package aria2) fetch it in turn.
"""
import argparse
import json
import os
import shutil
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

URL_PLAN = """version: 1
name: bench
steps:
  - {id: dl, type: download, url: "%s", path: out.zip, connections: %d}
"""

NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
pid %(work)s/nginx.pid;
error_log %(work)s/nginx.err;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path %(work)s/t; proxy_temp_path %(work)s/t; fastcgi_temp_path %(work)s/t;
    uwsgi_temp_path %(work)s/t; scgi_temp_path %(work)s/t;
    server {
        listen 127.0.0.1:%(port)d;
        root %(root)s;
        location / { limit_rate %(rate)s; }
    }
}
"""

PLAN = """version: 1
name: bench
servers:
  mm: {url: "${env:MM_URL}", token: "${env:MM_TOKEN}"}
steps:
  - {id: dl, type: download, server: mm, export: "%s", path: out.zip}
"""


def make_export(path, size):
    """A valid zip (the download step checks for one) with one stored entry."""
    chunk = os.urandom(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        with z.open("data/blob.bin", "w", force_zip64=True) as f:
            for _ in range(size >> 20):
                f.write(chunk)
        z.writestr("import.jsonl", '{"type":"version","version":1}\n')


def vm_hwm_kib(pid):
    """Peak RSS of the process image since exec (ru_maxrss would also count
    the Python that forked it)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed(argv, env=None, cwd=None):
    """Wall seconds and peak RSS (KiB, sampled every 10 ms) of one child process."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while p.poll() is None:
        peak = max(peak, vm_hwm_kib(p.pid))
        time.sleep(0.01)
    wall = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if p.returncode != 0:
        raise SystemExit("%s failed: %s" % (argv[0], err[-2000:]))
    return wall, peak


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(work, root, rate):
    """nginx on a free port serving root, each connection paced at rate: (process, base URL)."""
    port = free_port()
    os.makedirs(os.path.join(work, "t"), exist_ok=True)
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF % {"work": work, "port": port, "root": root, "rate": rate})
    p = subprocess.Popen(["nginx", "-c", conf, "-p", work], stderr=subprocess.PIPE)
    url = "http://127.0.0.1:%d" % port
    for _ in range(100):
        try:
            import urllib.request
            urllib.request.urlopen(url + "/", timeout=1)
        except urllib.error.HTTPError:
            break  # answers (403/404 for the directory): up
        except OSError:
            time.sleep(0.05)
            continue
        break
    return p, url


def bench_connections(a):
    """mmigrate with 1 and N connections and aria2c -xN against nginx with limit_rate."""
    for tool in ("nginx", "aria2c"):
        if not shutil.which(tool):
            raise SystemExit("%s is needed: apt-get install %s" % (tool, "aria2" if tool == "aria2c" else tool))
    work = tempfile.mkdtemp(prefix="mmigrate-bench-")
    root = os.path.join(work, "www")
    os.makedirs(root)
    name = "bench_export.zip"
    make_export(os.path.join(root, name), a.size_mib << 20)
    size = os.path.getsize(os.path.join(root, name))
    ng, url = start_nginx(work, root, a.limit_rate)
    rows = {}
    try:
        for n in (1, a.connections):
            plan = os.path.join(work, "plan%d.yaml" % n)
            with open(plan, "w") as f:
                f.write(URL_PLAN % (url + "/" + name, n))
            label = "mmigrate connections: %d" % n
            for _ in range(a.runs):
                shutil.rmtree(os.path.join(work, ".mmigrate"), ignore_errors=True)
                if os.path.exists(os.path.join(work, "out.zip")):
                    os.unlink(os.path.join(work, "out.zip"))
                rows.setdefault(label, []).append(timed([a.bin, "apply", "--quiet", plan], cwd=work))
        label = "aria2c -x%d -s%d" % (a.connections, a.connections)
        for _ in range(a.runs):
            out = os.path.join(work, "aria.zip")
            rows.setdefault(label, []).append(timed(
                ["aria2c", "-q", "-x%d" % a.connections, "-s%d" % a.connections, "--min-split-size=1M",
                 "--file-allocation=none", "--allow-overwrite=true", "-d", work, "-o", "aria.zip",
                 url + "/" + name]))
            os.unlink(out)
    finally:
        ng.terminate()
        ng.wait()
        shutil.rmtree(work, ignore_errors=True)
    mib = size / (1 << 20)
    print("file: %.0f MiB, nginx limit_rate %s per connection, %d runs, median" % (mib, a.limit_rate, a.runs))
    print("%-26s %8s %10s %12s" % ("", "seconds", "MiB/s", "peak RSS MiB"))
    for label, got in rows.items():
        t = statistics.median(w for w, _ in got)
        print("%-26s %8.2f %10.1f %12.1f" % (label, t, mib / t, max(r for _, r in got) / 1024))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"size_mib": mib, "runs": a.runs, "limit_rate": a.limit_rate,
                       "median_s": {k: statistics.median(w for w, _ in v) for k, v in rows.items()}}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(SRC, "build", "mmigrate"))
    ap.add_argument("--json", help="write the figures here as JSON (bench/run)")
    ap.add_argument("--dir", help="where both write their file (e.g. /dev/shm: tmpfs, where fsync costs nothing)")
    ap.add_argument("--connections", type=int, default=0,
                    help="compare 1 and N connections and aria2c -xN against nginx")
    ap.add_argument("--limit-rate", default="20m", help="nginx limit_rate per connection (--connections)")
    a = ap.parse_args()
    if a.connections:
        return bench_connections(a)
    if not shutil.which("curl"):
        raise SystemExit("the curl CLI is needed as the peer: apt-get install curl")
    work = tempfile.mkdtemp(prefix="mmigrate-bench-", dir=a.dir)
    try:
        with FakeServer(seed="none") as srv:
            name = "benchbenchbenchbenchbench1_export.zip"
            make_export(os.path.join(srv.export_dir, name), a.size_mib << 20)
            size = os.path.getsize(os.path.join(srv.export_dir, name))
            plan = os.path.join(work, "plan.yaml")
            with open(plan, "w") as f:
                f.write(PLAN % name)
            env = dict(os.environ, MM_URL=srv.url, MM_TOKEN=srv.admin_token)
            ours, peer, peer_sync = [], [], []
            for _ in range(a.runs):
                shutil.rmtree(os.path.join(work, ".mmigrate"), ignore_errors=True)
                for f in ("out.zip", "curl.zip"):
                    if os.path.exists(os.path.join(work, f)):
                        os.unlink(os.path.join(work, f))
                ours.append(timed([a.bin, "apply", "--quiet", plan], env=env, cwd=work))
                # curl reads the token from a header file so it never shows in ps.
                hdr = os.path.join(work, "auth.hdr")
                with open(hdr, "w") as f:
                    f.write("Authorization: Bearer %s\n" % srv.admin_token)
                argv = ["curl", "-sSf", "-H", "@" + hdr, "-o", os.path.join(work, "curl.zip"),
                        "%s/api/v4/exports/%s" % (srv.url, name)]
                peer.append(timed(argv))
                os.unlink(os.path.join(work, "curl.zip"))
                # The same, then fsync (coreutils sync FILE): mmigrate's download is durable.
                peer_sync.append(timed(["sh", "-c", 'curl -sSf -H "$1" -o "$2" "$3" && sync "$2"', "sh",
                                        "@" + hdr, os.path.join(work, "curl.zip"), argv[-1]]))
                os.unlink(hdr)
        o_t = statistics.median(t for t, _ in ours)
        p_t = statistics.median(t for t, _ in peer)
        mib = size / (1 << 20)
        print("file: %.0f MiB export, %d runs, median" % (mib, a.runs))
        print("%-22s %8s %10s %12s" % ("", "seconds", "MiB/s", "peak RSS MiB"))
        print("%-22s %8.2f %10.1f %12.1f" % ("mmigrate download", o_t, mib / o_t, max(r for _, r in ours) / 1024))
        print("%-22s %8.2f %10.1f %12.1f" % ("curl -o", p_t, mib / p_t, max(r for _, r in peer) / 1024))
        s_t = statistics.median(t for t, _ in peer_sync)
        print("%-22s %8.2f %10.1f %12.1f" % ("curl -o; sync FILE", s_t, mib / s_t, max(r for _, r in peer_sync) / 1024))
        print("ratio mmigrate/curl time: %.2fx without fsync, %.2fx against curl + fsync (target <= 1.25x;"
              " mmigrate also hashes SHA-256, fsyncs and checks the zip)" % (o_t / p_t, o_t / s_t))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"size_mib": mib, "runs": a.runs, "ours_s": o_t, "curl_s": p_t, "curl_sync_s": s_t,
                           "ours_rss_mib": max(r for _, r in ours) / 1024,
                           "curl_rss_mib": max(r for _, r in peer) / 1024}, f)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
