#!/usr/bin/env python3
"""Tiny HTTP server for test_http.c (stdlib only; not the Mattermost fake).

    httpd_stub.py PORT_FILE [UNIX_SOCKET]

Listens on 127.0.0.1 (port written to PORT_FILE once ready) and, when given,
on a unix socket for local mode. Each route exercises one behaviour of the
HTTP layer: auth, AppError bodies, 429 + Retry-After, 503 bursts, ranges,
416, cut connections, slow bodies, raw uploads, and a few Mattermost routes.
Counters are keyed by the `key` query parameter so test cases stay apart.
"""
import hashlib
import json
import os
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = "stub-token-not-a-secret-01"  # 26 chars, like a real session token
VERSION_ID = "9.11.2.12345.abcdef.true"
JOB_ID = "jobjobjobjobjobjobjobjob12"
UPLOAD_ID = "upupupupupupupupupupupup12"

hits = {}
last_file_headers = {}
lock = threading.Lock()


def count(key):
    with lock:
        hits[key] = hits.get(key, 0) + 1
        return hits[key]


def file_bytes(size):
    return bytes((i * 7 + 3) % 251 for i in range(size))


def app_error(status, id_, message):
    return status, {"id": id_, "message": message, "detailed_error": "",
                    "request_id": "reqreqreqreqreqreqreqreq12", "status_code": status}


def team(i):
    return {"id": "team%022d" % i, "name": "team-%d" % i, "display_name": "Team %d" % i,
            "type": "O", "delete_at": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # -- plumbing -------------------------------------------------------
    def send(self, status, body, ctype="application/json", headers=()):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Version-ID", VERSION_ID)
        self.send_header("X-Request-ID", "reqreqreqreqreqreqreqreq12")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def authed(self):
        if isinstance(self.client_address, str) or not self.client_address:
            return self.headers.get("Authorization") is None  # local mode: no token at all
        return self.headers.get("Authorization") == "Bearer " + TOKEN

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        u = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        self.q = q
        data = self.body() if method in ("POST", "PUT") and u.path != "/upload" else b""
        fn = ROUTES.get((method, u.path))
        if fn is None:
            for (m, prefix), f in PREFIX_ROUTES:
                if m == method and u.path.startswith(prefix):
                    fn = f
                    break
        if fn is None:
            status, obj = app_error(404, "api.context.404.app_error",
                                    "Sorry, we could not find the page.")
            return self.send(status, obj)
        out = fn(self, u.path, q, data)
        if out is not None:
            self.send(*out)

    # -- streaming routes (write their own answer) -------------------------
    def r_file(self, path, q, data):
        size = int(q.get("size", "100000"))
        content = file_bytes(size)
        with lock:
            last_file_headers.clear()
            last_file_headers.update({k.lower(): v for k, v in self.headers.items()})
        rng = self.headers.get("Range")
        if not rng or q.get("ignore_range"):
            return 200, content, "application/zip"
        first, _, last = rng.split("=")[1].partition("-")
        start, end = int(first), min(int(last), size - 1) if last else size - 1
        if start >= size:
            return 416, "invalid range: failed to overlap\n", "text/plain; charset=utf-8", \
                [("Content-Range", "bytes */%d" % size)]
        if q.get("wrong_start"):
            start += 1
        return 206, content[start:end + 1], "application/zip", \
            [("Content-Range", "bytes %d-%d/%d" % (start, end, size))]

    def r_cut(self, path, q, data):
        size = int(q.get("size", "100000"))
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.write(file_bytes(size)[: size // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def r_slow(self, path, q, data):
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.close_connection = True
        try:
            for _ in range(200):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    def r_upload(self, path, q, data):
        if self.headers.get("Transfer-Encoding"):
            return 400, {"id": "chunked", "message": "chunked body"}
        n = int(self.headers.get("Content-Length") or -1)
        body = self.rfile.read(n) if n > 0 else b""
        return 200, {"len": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                     "content_length": n,
                     "ct": self.headers.get("Content-Type", ""),
                     "expect": self.headers.get("Expect", ""),
                     "auth": self.headers.get("Authorization") is not None}


# -- simple routes: return (status, body[, ctype[, headers]]) -----------------

def r_me(h, path, q, data):
    if not h.authed():
        return app_error(401, "api.context.session_expired.app_error",
                         "Invalid or expired session, please login again.")
    return 200, {"id": "useruseruseruseruseruser12", "username": "admin",
                 "email": "admin@example.com", "roles": "system_user system_admin",
                 "delete_at": 0, "auth_service": ""}


def r_login(h, path, q, data):
    body = json.loads(data or b"{}")
    if body.get("login_id") != "admin" or body.get("password") != "pw":
        return app_error(401, "api.user.login.invalid_credentials_email_username",
                         "Enter a valid email or username and/or password.")
    status, user = r_me_user()
    return status, user, "application/json", [("token", TOKEN)]


def r_me_user():
    return 200, {"id": "useruseruseruseruseruser12", "username": "admin",
                 "roles": "system_user system_admin"}


def r_echo(h, path, q, data):
    return 200, {"ua": h.headers.get("User-Agent", ""),
                 "auth": h.headers.get("Authorization") is not None,
                 "accept_encoding": h.headers.get("Accept-Encoding", ""),
                 "x_requested_with": h.headers.get("X-Requested-With", ""),
                 "cookie": h.headers.get("Cookie", ""),
                 "port": h.client_address[1] if not isinstance(h.client_address, str) else 0}


def r_apperror(h, path, q, data):
    # A careless server echoing the credentials it got: the client must redact them.
    return app_error(400, "api.test.app_error",
                     "Cannot do it; you sent %s" % h.headers.get("Authorization", ""))


def r_html(h, path, q, data):
    return 502, "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", \
        "text/html"


def r_rate(h, path, q, data):
    if count(q["key"]) == 1:
        return 429, "limit exceeded\n", "text/plain; charset=utf-8", [("Retry-After", "1")]
    return 200, {"ok": True}


def r_busy(h, path, q, data):
    n = count(q["key"])
    if n <= int(q.get("n", "3")):
        code = int(q.get("code", "503"))
        return app_error(code, "api.context.server_busy.app_error", "Server is busy")
    return 200, {"hits": n}


def r_count(h, path, q, data):
    with lock:
        return 200, {"hits": hits.get(q["key"], 0)}


def r_lastfile(h, path, q, data):
    with lock:
        return 200, dict(last_file_headers)


def job(status="pending", data=None):
    return {"id": JOB_ID, "type": "export_process", "priority": 0, "create_at": 1700000000000,
            "start_at": 0, "last_activity_at": 1700000000000, "status": status, "progress": 0,
            "data": data}


def r_create_job(h, path, q, data):
    body = json.loads(data)
    if not all(isinstance(v, str) for v in body.get("data", {}).values()):
        return app_error(400, "test.not_strings", "data values must be strings")
    j = job(data=body.get("data"))
    j["type"] = body["type"]
    return 201, j


def r_get_job(h, path, q, data):
    if path.rsplit("/", 1)[1] != JOB_ID:
        return app_error(404, "app.job.get.app_error", "Unable to get the job.")
    return 200, job("success", None)


def r_job_list(h, path, q, data):
    if q.get("page") != "0":
        return 200, []
    return 200, [job("in_progress", {"a": "1"}), job("success")]


def r_exports(h, path, q, data):
    return 200, [JOB_ID + "_export.zip", "old_export.zip"]


def r_delete_import(h, path, q, data):
    return app_error(404, "api.context.404.app_error", "Sorry, we could not find the page.")


def r_create_upload(h, path, q, data):
    body = json.loads(data)
    if body.get("filename") == "cloud.zip":
        return app_error(400, "api.file.cloud_upload.app_error",
                         "Cannot upload import files to Cloud")
    return 201, {"id": UPLOAD_ID, "type": body["type"], "create_at": 1700000000000,
                 "user_id": "useruseruseruseruseruser12", "filename": body["filename"],
                 "file_size": body["file_size"], "file_offset": 0}


def r_get_upload(h, path, q, data):
    return app_error(404, "app.upload.get.app_error", "Unable to get the upload.")


def r_teams(h, path, q, data):
    page, per = int(q.get("page", "0")), int(q.get("per_page", "60"))
    teams = [team(i) for i in range(3)]
    return 200, teams[page * per:(page + 1) * per]


def r_channel(h, path, q, data):
    return 200, {"id": "chanchanchanchanchanchan12", "team_id": "team%022d" % 0,
                 "name": path.rsplit("/", 1)[1], "display_name": "Town",
                 "type": "O", "delete_at": 0, "total_msg_count": 42,
                 "include_deleted": q.get("include_deleted", "")}


def r_patch(h, path, q, data):
    patch = json.loads(data)
    return 200, {"FileSettings": {"MaxFileSize": patch["FileSettings"]["MaxFileSize"]}}


ROUTES = {
    ("GET", "/api/v4/users/me"): r_me,
    ("POST", "/api/v4/users/login"): r_login,
    ("GET", "/echo"): r_echo,
    ("GET", "/apperror"): r_apperror,
    ("GET", "/html"): r_html,
    ("GET", "/rate"): r_rate,
    ("GET", "/busy"): r_busy,
    ("POST", "/busy"): r_busy,
    ("GET", "/count"): r_count,
    ("GET", "/lastfile"): r_lastfile,
    ("GET", "/file"): Handler.r_file,
    ("GET", "/cut"): Handler.r_cut,
    ("GET", "/slow"): Handler.r_slow,
    ("POST", "/upload"): Handler.r_upload,
    ("POST", "/api/v4/jobs"): r_create_job,
    ("GET", "/api/v4/exports"): r_exports,
    ("POST", "/api/v4/uploads"): r_create_upload,
    ("GET", "/api/v4/teams"): r_teams,
    ("PUT", "/api/v4/config/patch"): r_patch,
}
PREFIX_ROUTES = [
    (("GET", "/api/v4/jobs/type/"), r_job_list),
    (("GET", "/api/v4/jobs/"), r_get_job),
    (("DELETE", "/api/v4/imports/"), r_delete_import),
    (("GET", "/api/v4/uploads/"), r_get_upload),
    (("GET", "/api/v4/teams/"), r_channel),
]


class QuietErrors:
    """The tests cut connections on purpose: a broken pipe is not news."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class TCPServer(QuietErrors, ThreadingHTTPServer):
    daemon_threads = True


class UnixHTTPServer(QuietErrors, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    port_file = sys.argv[1]
    srv = TCPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    if len(sys.argv) > 2:
        usrv = UnixHTTPServer(sys.argv[2], Handler)
        threading.Thread(target=usrv.serve_forever, daemon=True).start()
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, port_file)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
