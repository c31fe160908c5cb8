"""Test helpers for tests/fake/mmfake.py (Python 3 standard library only).

    from fakelib import FakeServer, write_bulk_zip

    with FakeServer(seed="small", job_pending_seconds=0, job_run_seconds=0.2) as srv:
        r = srv.request("GET", "/users/me")            # admin PAT by default
        assert r.status == 200 and r.json()["username"] == "admin"
        srv.faults(download_drop={"after_bytes": 1000})
        print(srv.model()["counts"], srv.log()[-1])

FakeServer(**options) starts mmfake.py as a subprocess on a free port of
127.0.0.1 (through --port-file) and stops it on exit.  Options are mmfake
command-line options with dashes written as underscores: True adds a flag,
False/None leaves it out, a list repeats the option, a dict is passed as JSON
(for fault= and config_patch=).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ssl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

MMFAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mmfake.py")


class Response:
    """A finished HTTP exchange: status, headers (case-insensitive), body bytes."""

    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str, default=None):
        return self.headers.get(name, default)

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"<Response {self.status} {self.body[:120]!r}>"


def totp(secret_b32: str, at: float | None = None) -> str:
    """The current 6-digit TOTP code for an MFA secret (RFC 6238, SHA-1, 30 s)."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000)


class FakeServer:
    DEFAULT_TOKEN = object()

    def __init__(self, seed: str = "none", job_pending_seconds: float = 0.0, job_run_seconds: float = 0.0,
                 env: dict | None = None, keep_dir: bool = False, **options):
        self.options = dict(options, seed=seed, job_pending_seconds=job_pending_seconds,
                            job_run_seconds=job_run_seconds)
        self.env = env
        self.keep_dir = keep_dir
        self.proc = None
        self.dir = None
        self.port = None
        self.url = None
        self.api_url = None
        self.credentials: dict = {}

    # -- lifecycle ------------------------------------------------------------
    def _argv(self) -> list:
        argv = []
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            values = value if isinstance(value, (list, tuple)) else [value]
            for item in values:
                if item is None or item is False:
                    continue
                if item is True:
                    argv.append(flag)
                elif isinstance(item, dict):
                    argv += [flag, json.dumps(item)]
                else:
                    argv += [flag, str(item)]
        return argv

    def start(self) -> "FakeServer":
        self.dir = tempfile.mkdtemp(prefix="mmfake-test-")
        port_file = os.path.join(self.dir, "port")
        creds_file = os.path.join(self.dir, "credentials.json")
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        argv = [sys.executable, MMFAKE, "--port", "0", "--port-file", port_file,
                "--credentials-file", creds_file]
        if "state_dir" not in self.options:
            argv += ["--state-dir", os.path.join(self.dir, "state")]
        argv += self._argv()
        env = dict(os.environ)
        env.update(self.env or {})
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, env=env)
        deadline = time.monotonic() + 20
        while not os.path.exists(port_file):
            if self.proc.poll() is not None:
                raise RuntimeError(f"mmfake exited with {self.proc.returncode}: {self.stderr_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("mmfake did not start within 20 s")
            time.sleep(0.02)
        with open(port_file) as fh:
            self.port = int(fh.read().strip())
        with open(creds_file) as fh:
            self.credentials = json.load(fh)
        self.tls = bool(self.options.get("tls_cert"))
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self.api_url = self.url + "/api/v4"
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.dir and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stderr_text(self) -> str:
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    @property
    def state_dir(self) -> str:
        return self.options.get("state_dir") or os.path.join(self.dir, "state")

    @property
    def export_dir(self) -> str:
        """Where export files live (ExportSettings.Directory inside the file store)."""
        return os.path.join(self.state_dir, "data", "export")

    @property
    def import_dir(self) -> str:
        """Where uploaded import files live (incomplete ones end in .tmp)."""
        return os.path.join(self.state_dir, "data", "import")

    # -- credentials ------------------------------------------------------------
    @property
    def admin_token(self) -> str:
        return self.credentials["admin"]["token"]

    @property
    def user_token(self) -> str:
        return self.credentials["user"]["token"]

    def login(self, username: str = "admin", password: str | None = None, mfa: str | None = None) -> str:
        """POST /users/login; returns the session token from the Token header."""
        if password is None:
            role = {"admin": "admin", "alice": "user", "mfauser": "mfa"}[username]
            password = self.credentials[role]["password"]
        body = {"login_id": username, "password": password}
        if mfa is not None:
            body["token"] = mfa
        resp = self.request("POST", "/users/login", body, token=None)
        if resp.status != 200:
            raise RuntimeError(f"login as {username} failed: {resp}")
        return resp.header("Token")

    # -- HTTP -----------------------------------------------------------------------
    def request(self, method: str, path: str, body=None, headers: dict | None = None,
                token=DEFAULT_TOKEN, timeout: float = 30) -> Response:
        """One request on a fresh connection.  path is relative to /api/v4 unless it
        starts with /api/ or /__.  body: bytes, or anything JSON-serialisable.
        token: the admin PAT by default; None sends no Authorization header."""
        if not path.startswith(("/api/", "/__")) and path != "/":
            path = "/api/v4" + path
        hdrs = dict(headers or {})
        if token is FakeServer.DEFAULT_TOKEN:
            token = self.admin_token
        if token:
            hdrs["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if self.tls:  # the tests' own calls trust the fake; mmigrate's checks are the subject
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=ssl._create_unverified_context())
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            try:
                conn.request(method, path, body=body, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError):
                # The server answered a refused body before reading it all (as
                # Go's net/http may): its answer is still there to read.
                pass
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, resp.headers, data)
        finally:
            conn.close()

    def control(self, method: str, path: str, body=None):
        resp = self.request(method, "/__fake/" + path.lstrip("/"), body if body is not None else None, token=None)
        if resp.status != 200:
            raise RuntimeError(f"control {method} {path} failed: {resp}")
        return resp.json()

    def log(self, since: int = 0) -> list:
        return self.control("GET", f"log?since={since}")

    def reset_log(self) -> None:
        self.control("POST", "reset-log")

    def faults(self, **spec) -> dict:
        """POST /__fake/faults with the keyword arguments as the JSON body."""
        return self.control("POST", "faults", spec)

    def clear_faults(self) -> dict:
        return self.faults(clear=True)

    def model(self) -> dict:
        return self.control("GET", "model")

    def model_edit(self, action: str, **spec) -> dict:
        """action: delete-channel, archive-channel, delete-team, delete-user, delete-posts."""
        return self.control("POST", "model/" + action, spec)

    def delete_channel(self, team: str, channel: str) -> dict:
        return self.model_edit("delete-channel", team=team, channel=channel)

    def config(self, **patch) -> dict:
        """Patch the server config without any restriction (POST /__fake/config)."""
        return self.control("POST", "config", patch)

    def files(self) -> dict:
        return self.control("GET", "files")

    def wait_job(self, job_id: str, timeout: float = 30, statuses=("success", "error", "canceled", "warning"),
                 token=DEFAULT_TOKEN) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.request("GET", f"/jobs/{job_id}", token=token).json()
            if job["status"] in statuses:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout} s")
            time.sleep(0.05)

    def export(self, timeout: float = 30, **data) -> tuple:
        """Runs an export job to completion; returns (job, export file name)."""
        before = set(self.request("GET", "/exports").json())
        resp = self.request("POST", "/jobs", {"type": "export_process",
                                              "data": {k: str(v).lower() if isinstance(v, bool) else v
                                                       for k, v in data.items()}})
        if resp.status != 201:
            raise RuntimeError(f"export job not created: {resp}")
        job = self.wait_job(resp.json()["id"], timeout)
        if job["status"] != "success":
            raise RuntimeError(f"export failed: {job}")
        after = set(self.request("GET", "/exports").json())
        name = f"{job['id']}_export.zip"
        if name not in after:
            (name,) = after - before
        return job, name


def write_bulk_zip(path: str, lines, files: dict | None = None, jsonl_name: str = "import.jsonl") -> str:
    """Writes a bulk-import archive: lines (dicts or raw str/bytes lines) as the
    root JSONL, deflated and first; files {"data/...": bytes} stored.  A version
    line is not added for you."""
    with zipfile.ZipFile(path, "w") as zf:
        parts = []
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line, separators=(",", ":"))
            if isinstance(line, str):
                line = line.encode("utf-8")
            parts.append(line + b"\n")
        zf.writestr(zipfile.ZipInfo(jsonl_name, time.gmtime()[:6]), b"".join(parts),
                    compress_type=zipfile.ZIP_DEFLATED)
        for name, data in (files or {}).items():
            zf.writestr(zipfile.ZipInfo(name, time.gmtime()[:6]), data, compress_type=zipfile.ZIP_STORED)
    return path


def raw_exchange(port: int, request: bytes, close_after_send: bool = False, timeout: float = 10) -> bytes:
    """Sends raw bytes on a new connection and returns what comes back (for
    tests that need a malformed or truncated request)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(request)
        if close_after_send:
            return b""
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except (socket.timeout, ConnectionError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)
    finally:
        sock.close()
