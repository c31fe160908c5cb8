"""Hostile servers, hostile disks, hostile neighbours: each case here failed
before its fix. Where the fake cannot misbehave the way an attacker would,
a purpose-built server (Python stdlib, 127.0.0.1) does.

  state directory: a link, someone else's, group/other-writable → refused;
                   links planted at .part, state.json.tmp, journal.jsonl, lock → refused, target untouched
  memory:          oversized JSON (announced or streamed) and deep nesting → refused early
  secrets:         a server echoing the login body (password) → never printed or stored
  terminal:        ESC sequences and CR/LF in server strings → escaped
  transfers:       a body trickling at 3 B/s → cut, and the step fails within its deadline
"""
import http.server
import json
import os
import threading
import time
import unittest

import harness
from harness import Workdir, run
from fakelib import FakeServer, write_bulk_zip

EXEC_PLAN = """version: 1
name: hx
steps:
  - {id: one, type: exec, command: echo hi}
"""


class Hostile(http.server.ThreadingHTTPServer):
    """A server whose every answer the test decides: routes[(method, path)] = fn(handler)."""
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), HostileHandler)
        self.routes = {}
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d" % self.server_address[1]

    def stop(self):
        self.shutdown()
        self.server_close()


class HostileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        fn = self.server.routes.get((method, self.path.split("?")[0]))
        if fn is None:
            self.answer(404, b'{"id":"api.context.404.app_error","message":"not here"}')
            return
        try:
            fn(self)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def answer(self, status, body, length=True, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


def me(username="admin", roles="system_admin system_user"):
    return json.dumps({"id": "a" * 26, "username": username, "email": "a@example.com",
                       "roles": roles, "auth_service": ""}).encode()


AUTH_PLAN = """version: 1
name: hx
servers:
  evil:
    url: {url}
    token: ${{env:EVIL_TOKEN}}
steps:
  - {{id: login, type: auth, server: evil}}
"""


class StateDirTest(unittest.TestCase):
    def setUp(self):
        self.wd = Workdir(self)
        self.plan = self.wd.plan(EXEC_PLAN)
        self.dir = self.wd.state_dir("hx")

    def test_group_writable_dir_refused(self):
        os.makedirs(self.dir, mode=0o700)
        os.chmod(self.dir, 0o770)
        r = run(["apply", self.plan])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("'%s' has mode 0770" % self.dir, r.stderr)
        self.assertIn("chmod 700", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "state.json")))
        r = run(["status", self.plan])
        self.assertNotEqual(r.returncode, 0)

    def test_symlinked_dir_refused(self):
        real = os.path.join(self.wd.path, "elsewhere")
        os.makedirs(real, mode=0o700)
        os.makedirs(os.path.dirname(self.dir), mode=0o700)
        os.symlink(real, self.dir)
        r = run(["apply", self.plan])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("'%s' is a symbolic link" % self.dir, r.stderr)
        self.assertEqual(os.listdir(real), [])

    @unittest.skipUnless(os.geteuid() == 0, "needs root to give the directory away")
    def test_foreign_owner_refused(self):
        os.makedirs(self.dir, mode=0o700)
        os.chown(self.dir, 65534, 65534)
        r = run(["apply", self.plan])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("owned by uid 65534", r.stderr)
        self.assertIn("chown", r.stderr)

    def test_new_dir_is_private(self):
        run(["apply", self.plan], check_exit=0)
        self.assertEqual(os.stat(self.dir).st_mode & 0o777, 0o700)

    def planted(self, name):
        """A link at name in a fresh state dir pointing at a file the test owns."""
        os.makedirs(self.dir, mode=0o700)
        target = os.path.join(self.wd.path, "precious-" + name)
        with open(target, "w") as f:
            f.write("do not touch\n")
        os.symlink(target, os.path.join(self.dir, name))
        return target

    def assert_untouched(self, target):
        with open(target) as f:
            self.assertEqual(f.read(), "do not touch\n")

    def test_planted_links_refused(self):
        for name in ("state.json.tmp", "journal.jsonl", "lock"):
            with self.subTest(name=name):
                target = self.planted(name)
                r = run(["apply", self.plan])
                self.assertNotEqual(r.returncode, 0, name)
                self.assertIn(name, r.stderr)
                self.assert_untouched(target)
                import shutil
                shutil.rmtree(os.path.dirname(self.dir))

    def test_planted_part_link_refused(self):
        srv = Hostile()
        self.addCleanup(srv.stop)
        body = b"PK" + b"x" * 1000
        srv.routes[("GET", "/a.zip")] = lambda h: h.answer(200, body, ctype="application/zip")
        plan = self.wd.plan("version: 1\nname: hx\nsteps:\n  - {id: dl, type: download, url: %s/a.zip, "
                            "path: out.zip}\n" % srv.url)
        target = os.path.join(self.wd.path, "precious")
        with open(target, "w") as f:
            f.write("do not touch\n")
        os.symlink(target, os.path.join(self.wd.path, "out.zip.part"))
        r = run(["apply", plan])
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("out.zip.part", r.stdout + r.stderr)
        self.assert_untouched(target)


class ServerTest(unittest.TestCase):
    def setUp(self):
        self.wd = Workdir(self)
        self.srv = Hostile()
        self.addCleanup(self.srv.stop)
        self.plan = self.wd.plan(AUTH_PLAN.format(url=self.srv.url))
        self.env = {"EVIL_TOKEN": "tok" + "x" * 23}

    def apply(self):
        t0 = time.monotonic()
        r = run(["apply", self.plan], env=self.env, timeout=120)
        return r, time.monotonic() - t0

    # -- memory from small answers -------------------------------------
    def test_oversized_answer_refused_at_content_length(self):
        big = b"[" + b"0," * (1 << 20) + b"0]"  # 2 MiB of zeros: 1M values
        self.srv.routes[("GET", "/api/v4/users/me")] = lambda h: h.answer(200, big)
        r, _ = self.apply()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("answer of %d bytes is larger than the 1048576 this call accepts" % len(big),
                      r.stdout + r.stderr)

    def test_oversized_answer_refused_while_streaming(self):
        big = b"[" + b"0," * (1 << 20) + b"0]"
        self.srv.routes[("GET", "/api/v4/users/me")] = lambda h: h.answer(200, big, length=False)
        r, _ = self.apply()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("answer larger than the 1048576 bytes this call accepts", r.stdout + r.stderr)

    def test_deep_nesting_refused_before_parsing(self):
        deep = b"[" * 100000 + b"]" * 100000
        self.srv.routes[("GET", "/api/v4/users/me")] = lambda h: h.answer(200, deep)
        r, _ = self.apply()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("JSON nests deeper than 64 levels", r.stdout + r.stderr)

    # -- terminal injection --------------------------------------------
    def test_control_characters_from_server_are_escaped(self):
        evil = "mallory\x1b]0;owned\x07\x1b[2J\r\nmmigrate: FORGED all steps done\x9b31m"
        self.srv.routes[("GET", "/api/v4/users/me")] = lambda h: h.answer(200, me(evil, "system_user"))
        for output in ("text", "json"):
            with self.subTest(output=output):
                r = run(["--output", output, "apply", self.plan], env=self.env)
                out = r.stdout + r.stderr
                self.assertEqual(r.returncode, 1, out)
                self.assertIn("is not a system admin", out)
                self.assertNotIn("\x1b", out)
                self.assertNotIn("\x07", out)
                self.assertNotIn("\x9b", out)
                self.assertNotIn("\u009b", out)
                for line in out.splitlines():
                    self.assertFalse(line.startswith("mmigrate: FORGED"), line)
                if output == "text":
                    self.assertIn("mallory\\e]0;owned\\x07", out)

    # -- transfers without a floor -------------------------------------
    def test_trickling_download_ends_within_its_deadline(self):
        def trickle(h):
            h.send_response(200)
            h.send_header("Content-Type", "application/zip")
            h.send_header("Content-Length", "100000")
            h.end_headers()
            try:
                for _ in range(1000):
                    h.wfile.write(b"PK\x03")
                    h.wfile.flush()
                    time.sleep(1)
            except OSError:
                pass
        self.srv.routes[("GET", "/slow.zip")] = trickle
        plan = self.wd.plan("version: 1\nname: slow\ndefaults: {min_speed: 1KiB, min_speed_window: 2s}\n"
                            "steps:\n  - {id: dl, type: download, url: %s/slow.zip, path: slow.zip, "
                            "transfer_deadline: 5s}\n" % self.srv.url, name="slow.yaml")
        t0 = time.monotonic()
        r = run(["apply", plan], timeout=120)
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("the transfer stayed below 1024 bytes/s", r.stdout + r.stderr)
        self.assertLess(took, 40, "a stalled transfer must end within its deadline (plus backoff)")

    def test_floor_keys_validate(self):
        plan = self.wd.plan("version: 1\nname: k\ndefaults: {connect_timeout: 5s, min_speed: 2KiB, "
                            "min_speed_window: 10s, transfer_deadline: 1m}\nsteps:\n"
                            "  - {id: dl, type: download, url: http://127.0.0.1:9/x.zip, min_speed: 1KiB}\n",
                            name="k.yaml")
        run(["validate", plan], check_exit=0)
        bad = self.wd.plan("version: 1\nname: k\ndefaults: {min_speed: fast}\nsteps:\n"
                           "  - {id: a, type: exec, command: 'true'}\n", name="bad.yaml")
        r = run(["validate", bad], check_exit=2)
        self.assertIn("'min_speed' must be a positive size", r.stderr)


class EchoTest(unittest.TestCase):
    """A server that repeats the login request (password, MFA code) in its error."""

    def test_echoed_password_never_printed_or_stored(self):
        srv = FakeServer(seed="none").start()
        self.addCleanup(srv.stop)
        wd = Workdir(self)
        password = srv.credentials["admin"]["password"]
        plan = wd.plan("version: 1\nname: echo\nservers:\n  t:\n    url: %s\n    username: admin\n"
                       "    password: ${env:PW}\nsteps:\n  - {id: login, type: auth, server: t}\n" % srv.url)
        srv.faults(login_echo={"count": -1})  # -1: the reauth retry is echoed too
        r = subprocess_run(["apply", plan], {"PW": password})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("<redacted>", r.stdout + r.stderr)
        texts = [r.stdout, r.stderr]
        for name in ("state.json", "journal.jsonl"):
            with open(os.path.join(wd.state_dir("echo"), name)) as f:
                texts.append(f.read())
        for t in texts:
            self.assertNotIn(password, t)
        # Without the fault, the same plan logs in.
        srv.clear_faults()
        run(["apply", plan], env={"PW": password}, check_exit=0)


class StuckUploadTest(unittest.TestCase):
    """A target that answers 204 to every chunk and never stores a byte."""

    def test_no_endless_upload(self):
        srv = FakeServer(seed="none").start()
        self.addCleanup(srv.stop)
        wd = Workdir(self)
        path = os.path.join(wd.path, "archive.zip")
        write_bulk_zip(path, ['{"type":"version","version":1}'])
        size = os.path.getsize(path)
        plan = wd.plan("version: 1\nname: stuck\nservers:\n  t:\n    url: %s\n    token: ${env:TOK}\n"
                       "steps:\n  - {id: upload, type: upload, server: t, file: %s, unverified: true, "
                       "retries: 2, chunk_size: 1MiB}\n" % (srv.url, path))
        srv.faults(upload_stuck={"count": -1})
        seq = srv.log()[-1]["seq"] if srv.log() else 0
        t0 = time.monotonic()
        r = run(["apply", plan], env={"TOK": srv.credentials["admin"]["token"]}, check_exit=1)
        self.assertLess(time.monotonic() - t0, 120)
        self.assertIn("made no progress", r.stdout + r.stderr)
        posts = [e for e in srv.log(seq) if e["method"] == "POST" and e["path"].startswith("/api/v4/uploads/")]
        # Before the fix, a target that never advanced was sent chunk after chunk, forever.
        self.assertLessEqual(len(posts), 3 * (2 + 1), posts[-3:])


def subprocess_run(args, env):
    """harness.run, which also checks for canaries (the fake's password is one)."""
    return run(args, env=env)


if __name__ == "__main__":
    harness.main()
