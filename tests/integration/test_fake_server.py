#!/usr/bin/env python3
"""Checks that tests/fake/mmfake.py behaves like the real Mattermost server on
the points listed in docs/mattermost-api.md section 10 (fake-server
checklist), plus its fault injection.  stdlib unittest; run directly:

    python3 tests/integration/test_fake_server.py [-v]
"""

import http.client
import io
import json
import os
import re
import socket
import sys
import tempfile
import time
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fake"))

from fakelib import FakeServer, raw_exchange, totp, write_bulk_zip  # noqa: E402

MIB = 1024 * 1024
ID_RE = re.compile(r"^[ybndrfg8ejkmcpqxot1uwisza345h769]{26}$")
SRC = DST = None


def setUpModule():
    global SRC, DST
    SRC = FakeServer(seed="small", job_pending_seconds=0.3, job_run_seconds=0.6).start()
    DST = FakeServer(seed="none", job_pending_seconds=0.1, job_run_seconds=0.1).start()


def tearDownModule():
    for srv in (SRC, DST):
        if srv:
            srv.stop()


def assert_app_error(test, resp, status, err_id):
    test.assertEqual(resp.status, status, resp)
    body = resp.json()
    test.assertEqual(body["id"], err_id, body)
    test.assertEqual(body["status_code"], status)
    test.assertIn("message", body)
    test.assertEqual(body.get("detailed_error"), "")
    return body


def new_upload(srv, size, name="archive.zip"):
    resp = srv.request("POST", "/uploads", {"type": "import", "filename": name, "file_size": size})
    assert resp.status == 201, resp
    return resp.json()


def get_offset(srv, upload_id):
    resp = srv.request("GET", f"/uploads/{upload_id}")
    assert resp.status == 200, resp
    return resp.json()["file_offset"]


class AuthTests(unittest.TestCase):
    def test_login_returns_token_header(self):
        creds = SRC.credentials["admin"]
        resp = SRC.request("POST", "/users/login", {"login_id": "admin", "password": creds["password"]}, token=None)
        self.assertEqual(resp.status, 200)
        token = resp.header("Token")
        self.assertRegex(token, ID_RE)
        user = resp.json()
        self.assertEqual(user["username"], "admin")
        self.assertIn("system_admin", user["roles"].split())
        self.assertNotIn("password", user)
        me = SRC.request("GET", "/users/me", token=token)
        self.assertEqual(me.status, 200)
        self.assertTrue(me.header("X-Version-Id").startswith("9.11.2."))
        # login by email, case-insensitive
        resp = SRC.request("POST", "/users/login", {"login_id": "ADMIN@example.com", "password": creds["password"]},
                           token=None)
        self.assertEqual(resp.status, 200)

    def test_login_failures_are_masked(self):
        bad = [{"login_id": "admin", "password": "wrong"}, {"login_id": "nobody", "password": "x"}]
        for body in bad:
            assert_app_error(self, SRC.request("POST", "/users/login", body, token=None), 401,
                             "api.user.login.invalid_credentials_email_username")
        # model.MapFromJSON turns a malformed body into an empty map: blank password.
        resp = SRC.request("POST", "/users/login", b"{not json", token=None)
        assert_app_error(self, resp, 400, "api.user.login.blank_pwd.app_error")
        resp = SRC.request("POST", "/users/login", {"login_id": "admin", "password": 5}, token=None)
        assert_app_error(self, resp, 400, "api.user.login.blank_pwd.app_error")
        resp = SRC.request("POST", "/users/login", {"login_id": "admin", "password": ""}, token=None)
        assert_app_error(self, resp, 400, "api.user.login.blank_pwd.app_error")
        resp = SRC.request("POST", "/users/login", {"login_id": "dave", "password": "x"}, token=None)
        assert_app_error(self, resp, 401, "api.user.login.inactive.app_error")

    def test_login_mfa(self):
        mfa = SRC.credentials["mfa"]
        body = {"login_id": "mfauser", "password": mfa["password"]}
        assert_app_error(self, SRC.request("POST", "/users/login", body, token=None), 401,
                         "mfa.validate_token.authenticate.app_error")
        code = totp(mfa["mfa_secret"])
        wrong = "%06d" % ((int(code) + 500000) % 1000000)
        assert_app_error(self, SRC.request("POST", "/users/login", dict(body, token=wrong), token=None), 401,
                         "api.user.check_user_mfa.bad_code.app_error")
        resp = SRC.request("POST", "/users/login", dict(body, token=totp(mfa["mfa_secret"])), token=None)
        self.assertEqual(resp.status, 200, resp)
        self.assertTrue(resp.header("Token"))

    def test_401_shape(self):
        resp = SRC.request("GET", "/users/me", token=None)
        body = assert_app_error(self, resp, 401, "api.context.session_expired.app_error")
        self.assertEqual(resp.header("Content-Type"), "application/json")
        self.assertEqual(body["request_id"], resp.header("X-Request-Id"))
        self.assertRegex(body["request_id"], ID_RE)
        assert_app_error(self, SRC.request("GET", "/users/me", token="x" * 26), 401,
                         "api.context.session_expired.app_error")

    def test_auth_schemes(self):
        token = SRC.admin_token
        for header in (f"Bearer {token}", f"bearer {token}", f"BEARER {token}", f"Token {token}", f"token {token}"):
            resp = SRC.request("GET", "/users/me", headers={"Authorization": header}, token=None)
            self.assertEqual(resp.status, 200, header)
        resp = SRC.request("GET", f"/users/me?access_token={token}", token=None)
        assert_app_error(self, resp, 401, "api.context.token_provided.app_error")
        # The MMAUTHTOKEN cookie takes precedence over the header.
        resp = SRC.request("GET", "/users/me", headers={"Cookie": "MMAUTHTOKEN=" + "y" * 26})
        assert_app_error(self, resp, 401, "api.context.session_expired.app_error")
        # A cookie session on a non-GET request needs the CSRF header.
        session = SRC.login()
        resp = SRC.request("POST", "/users/logout", headers={"Cookie": "MMAUTHTOKEN=" + session}, token=None)
        self.assertEqual(resp.status, 200)  # logout does not require a session
        resp = SRC.request("POST", "/jobs", {"type": "export_process"},
                           headers={"Cookie": "MMAUTHTOKEN=" + session}, token=None)
        assert_app_error(self, resp, 401, "api.context.session_expired.app_error")

    def test_users_me_etag(self):
        resp = SRC.request("GET", "/users/me")
        etag = resp.header("Etag")
        self.assertTrue(etag)
        again = SRC.request("GET", "/users/me", headers={"If-None-Match": etag})
        self.assertEqual(again.status, 304)
        self.assertEqual(again.body, b"")

    def test_non_admin_gets_403(self):
        alice = SRC.user_token
        self.assertEqual(SRC.request("GET", "/users/me", token=alice).json()["roles"], "system_user")
        for method, path, body in (("GET", "/exports", None), ("GET", "/imports", None),
                                   ("POST", "/jobs", {"type": "export_process"}),
                                   ("POST", "/uploads", {"type": "import", "filename": "a.zip", "file_size": 1}),
                                   ("GET", "/config", None)):
            assert_app_error(self, SRC.request(method, path, body, token=alice), 403,
                             "api.context.permissions.app_error")

    def test_logout_revokes_session(self):
        session = SRC.login("alice")
        self.assertEqual(SRC.request("POST", "/users/logout", token=session).json(), {"status": "OK"})
        assert_app_error(self, SRC.request("GET", "/users/me", token=session), 401,
                         "api.context.session_expired.app_error")

    def test_expire_sessions_fault(self):
        session = SRC.login()
        self.assertEqual(SRC.request("GET", "/users/me", token=session).status, 200)
        state = SRC.faults(expire_sessions=True)
        self.assertGreaterEqual(state["actions"]["expired_sessions"], 1)
        assert_app_error(self, SRC.request("GET", "/users/me", token=session), 401,
                         "api.context.session_expired.app_error")
        self.assertEqual(SRC.request("GET", "/users/me").status, 200)  # PATs survive


class RoutingTests(unittest.TestCase):
    def test_unknown_routes_404(self):
        for method, path in (("GET", "/api/v4/nope"), ("PUT", "/api/v4/exports"), ("HEAD", "/api/v4/users/me"),
                             ("POST", "/api/v4/jobs/x/y"), ("GET", "/api/v4/exports/not-a-zip"),
                             ("DELETE", "/api/v4/imports/x.zip"), ("GET", "/api/v3/users/me")):
            resp = SRC.request(method, path)
            self.assertEqual(resp.status, 404, (method, path))
            if method != "HEAD":
                self.assertEqual(resp.json()["id"], "api.context.404.app_error", (method, path))

    def test_bad_ids_400(self):
        for path in ("/jobs/abc", "/uploads/abc", "/users/abc", "/channels/" + "a" * 27):
            assert_app_error(self, SRC.request("GET", path), 400, "api.context.invalid_url_param.app_error")
        assert_app_error(self, SRC.request("GET", "/jobs/" + "a" * 26), 404, "app.job.get.app_error")

    def test_malformed_json_400(self):
        for path, body in (("/jobs", b"{"), ("/uploads", b"nope"), ("/jobs", b""),
                           ("/jobs", {"type": "export_process", "data": {"include_attachments": True}})):
            assert_app_error(self, SRC.request("POST", path, body), 400, "api.context.invalid_body_param.app_error")
        resp = SRC.request("PUT", "/config/patch", {"FileSettings": {"MaxFileSize": "big"}})
        assert_app_error(self, resp, 400, "api.context.invalid_body_param.app_error")

    def test_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", SRC.port, timeout=10)
        headers = {"Authorization": "Bearer " + SRC.admin_token}
        conn.request("GET", "/api/v4/users/me", headers=headers)
        conn.getresponse().read()
        sock = conn.sock
        for path in ("/api/v4/system/ping", "/api/v4/jobs/x", "/api/v4/nope", "/api/v4/users/me"):
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            self.assertFalse(resp.will_close, path)
            self.assertIs(conn.sock, sock, path)
        conn.close()

    def test_gzip_only_when_asked(self):
        plain = SRC.request("GET", "/users?per_page=200")
        self.assertIsNone(plain.header("Content-Encoding"))
        self.assertIsNotNone(plain.header("Content-Length"))
        zipped = SRC.request("GET", "/users?per_page=200", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(zipped.header("Content-Encoding"), "gzip")
        self.assertIsNone(zipped.header("Content-Length"))
        import gzip
        self.assertEqual(gzip.decompress(zipped.body), plain.body)

    def test_pagination(self):
        users = SRC.request("GET", "/users?per_page=2&page=0").json()
        self.assertEqual(len(users), 2)
        self.assertEqual(SRC.request("GET", "/users?per_page=2&page=999").json(), [])
        self.assertEqual(len(SRC.request("GET", "/users?per_page=-5").json()), 7)  # -> 60

    def test_reconciliation_reads(self):
        team = SRC.request("GET", "/teams/name/eng").json()
        public = SRC.request("GET", f"/teams/{team['id']}/channels").json()
        self.assertEqual(sorted(c["name"] for c in public), ["off-topic", "town-square"])
        private = SRC.request("GET", f"/teams/{team['id']}/channels/private").json()
        self.assertEqual([c["name"] for c in private], ["backend"])
        assert_app_error(self, SRC.request("GET", f"/teams/{team['id']}/channels/name/old-project"), 404,
                         "app.channel.get_by_name.missing.app_error")
        old = SRC.request("GET", f"/teams/{team['id']}/channels/name/old-project?include_deleted=true").json()
        self.assertGreater(old["delete_at"], 0)
        chan = SRC.request("GET", f"/channels/{public[0]['id']}").json()
        self.assertGreater(chan["total_msg_count"], 0)
        self.assertEqual(SRC.request("GET", "/users/username/bob").json()["username"], "bob")
        assert_app_error(self, SRC.request("GET", "/users/username/zed"), 404, "app.user.get_by_username.app_error")
        self.assertEqual(SRC.request("GET", "/system/ping", token=None).json()["status"], "OK")


class JobTests(unittest.TestCase):
    def test_export_job_lifecycle(self):
        resp = SRC.request("POST", "/jobs", {"type": "export_process", "data": {"include_attachments": "true"}})
        self.assertEqual(resp.status, 201)
        job = resp.json()
        self.assertEqual((job["status"], job["progress"], job["start_at"]), ("pending", 0, 0))
        self.assertEqual(job["data"], {"include_attachments": "true"})
        seen = set()
        deadline = time.monotonic() + 20
        while job["status"] not in ("success", "error"):
            self.assertLess(time.monotonic(), deadline)
            job = SRC.request("GET", f"/jobs/{job['id']}").json()
            seen.add(job["status"])
            if job["status"] == "in_progress":
                self.assertEqual(job["progress"], 0)
                self.assertGreater(job["start_at"], 0)
            time.sleep(0.03)
        self.assertEqual(job["status"], "success")
        self.assertEqual(job["progress"], 100)
        self.assertIn("in_progress", seen)
        self.assertEqual(job["data"]["include_attachments"], "true")
        self.assertIn("posts_exported", job["data"])
        newest = SRC.request("GET", "/jobs/type/export_process?page=0&per_page=1").json()
        self.assertEqual(newest[0]["id"], job["id"])
        filtered = SRC.request("GET", "/jobs?job_type=export_process&status=success").json()
        self.assertIn(job["id"], [j["id"] for j in filtered])

    def test_job_validation(self):
        assert_app_error(self, SRC.request("POST", "/jobs", {"type": "nonsense"}), 400,
                         "api.job.unable_to_create_job.incorrect_job_type")
        assert_app_error(self, SRC.request("POST", "/jobs", {"type": "ldap_sync"}), 400,
                         "model.job.is_valid.type.app_error")
        assert_app_error(self, SRC.request("GET", "/jobs/type/nonsense"), 400, "api.job.retrieve.nopermissions")

    def test_cancel_pending_job(self):
        SRC.faults(jobs_stay_pending=True)
        try:
            job = SRC.request("POST", "/jobs", {"type": "extract_content", "data": {"from": "0"}}).json()
            resp = SRC.request("POST", f"/jobs/{job['id']}/cancel")
            self.assertEqual((resp.status, resp.json()), (200, {"status": "OK"}))
            self.assertEqual(SRC.request("GET", f"/jobs/{job['id']}").json()["status"], "canceled")
            assert_app_error(self, SRC.request("POST", f"/jobs/{job['id']}/cancel"), 500,
                             "jobs.request_cancellation.status.error")
        finally:
            SRC.faults(jobs_stay_pending=False)

    def test_cancel_ignored_by_export_worker(self):
        job = SRC.request("POST", "/jobs", {"type": "export_process"}).json()
        SRC.wait_job(job["id"], statuses=("in_progress", "success"))
        resp = SRC.request("POST", f"/jobs/{job['id']}/cancel")
        self.assertEqual(resp.status, 200)
        self.assertEqual(SRC.request("GET", f"/jobs/{job['id']}").json()["status"], "cancel_requested")
        self.assertEqual(SRC.wait_job(job["id"])["status"], "success")

    def test_injected_job_failure(self):
        SRC.faults(job_fail={"type": "extract_content", "error": "boom — detail", "line_number": 7})
        job = SRC.request("POST", "/jobs", {"type": "extract_content"}).json()
        job = SRC.wait_job(job["id"])
        self.assertEqual((job["status"], job["progress"]), ("error", -1))
        self.assertEqual(job["data"]["error"], "boom — detail")
        self.assertEqual(job["data"]["line_number"], "7")


class DownloadTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.job, cls.name = SRC.export(include_attachments=True, include_archived_channels=True)
        cls.full = SRC.request("GET", f"/exports/{cls.name}")

    def test_export_name_and_listing(self):
        self.assertEqual(self.name, f"{self.job['id']}_export.zip")
        self.assertIn(self.name, SRC.request("GET", "/exports").json())

    def test_full_download(self):
        resp = self.full
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.header("Content-Type"), "application/zip")
        self.assertEqual(resp.header("Accept-Ranges"), "bytes")
        self.assertEqual(int(resp.header("Content-Length")), len(resp.body))
        self.assertIsNone(resp.header("Etag"))
        self.assertIsNone(resp.header("Last-Modified"))

    def test_zip_layout(self):
        zf = zipfile.ZipFile(io.BytesIO(self.full.body))
        infos = zf.infolist()
        self.assertEqual(infos[0].filename, "import.jsonl")
        self.assertEqual(infos[0].compress_type, zipfile.ZIP_DEFLATED)
        data = [i for i in infos if i.filename.startswith("data/")]
        self.assertGreaterEqual(len(data), 3)
        self.assertTrue(all(i.compress_type == zipfile.ZIP_STORED for i in data))
        lines = [json.loads(line) for line in zf.read("import.jsonl").decode().splitlines()]
        self.assertEqual(lines[0]["type"], "version")
        self.assertEqual(lines[0]["version"], 1)
        self.assertIn("generator", lines[0]["info"])
        order = ["version", "team", "channel", "user", "post", "direct_channel", "direct_post"]
        ranks = [order.index(line["type"]) for line in lines]
        self.assertEqual(ranks, sorted(ranks))
        self.assertEqual(set(ranks), set(range(len(order))))
        paths = {a["path"] for line in lines if line["type"] in ("post", "direct_post")
                 for a in line[line["type"]].get("attachments", [])}
        self.assertEqual({"data/" + p for p in paths}, {i.filename for i in data})
        self.assertTrue(any(line["type"] == "channel" and line["channel"]["deleted_at"] > 0 for line in lines))

    def test_range_resume(self):
        size = len(self.full.body)
        resp = SRC.request("GET", f"/exports/{self.name}", headers={"Range": "bytes=100-"})
        self.assertEqual(resp.status, 206)
        self.assertEqual(resp.header("Content-Range"), f"bytes 100-{size - 1}/{size}")
        self.assertEqual(int(resp.header("Content-Length")), size - 100)
        self.assertEqual(resp.body, self.full.body[100:])

    def test_range_past_end_416(self):
        size = len(self.full.body)
        resp = SRC.request("GET", f"/exports/{self.name}", headers={"Range": f"bytes={size}-"})
        self.assertEqual(resp.status, 416)
        self.assertEqual(resp.header("Content-Range"), f"bytes */{size}")
        self.assertTrue(resp.header("Content-Type").startswith("text/plain"))

    def test_if_range_gives_full_200(self):
        resp = SRC.request("GET", f"/exports/{self.name}", headers={"Range": "bytes=100-", "If-Range": "anything"})
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, self.full.body)

    def test_multi_range(self):
        resp = SRC.request("GET", f"/exports/{self.name}", headers={"Range": "bytes=0-9,20-29"})
        self.assertEqual(resp.status, 206)
        self.assertTrue(resp.header("Content-Type").startswith("multipart/byteranges; boundary="))
        self.assertIn(self.full.body[20:30], resp.body)

    def test_missing_export_404(self):
        assert_app_error(self, SRC.request("GET", "/exports/nothere.zip"), 404, "api.export.export_not_found.app_error")
        self.assertEqual(SRC.request("DELETE", "/exports/nothere.zip").json(), {"status": "OK"})
        assert_app_error(self, SRC.request("POST", f"/exports/{self.name}/presign-url"), 500,
                         "app.eport.generate_presigned_url.featureflag.app_error")

    def test_dropped_download_then_resume(self):
        SRC.faults(download_drop={"after_bytes": 1000})
        conn = http.client.HTTPConnection("127.0.0.1", SRC.port, timeout=10)
        conn.request("GET", f"/api/v4/exports/{self.name}", headers={"Authorization": "Bearer " + SRC.admin_token})
        resp = conn.getresponse()
        with self.assertRaises(http.client.IncompleteRead) as ctx:
            resp.read()
        conn.close()
        got = ctx.exception.partial
        self.assertEqual(len(got), 1000)
        rest = SRC.request("GET", f"/exports/{self.name}", headers={"Range": f"bytes={len(got)}-"})
        self.assertEqual(rest.status, 206)
        self.assertEqual(got + rest.body, self.full.body)
        # The dropped request's handler may log after the resumed one's: look at both.
        self.assertIn("download_dropped", [e["outcome"] for e in SRC.log()[-2:]])

    def test_ignore_range_fault(self):
        SRC.faults(ignore_range={"count": 1})
        resp = SRC.request("GET", f"/exports/{self.name}", headers={"Range": "bytes=100-"})
        self.assertEqual(resp.status, 200)
        self.assertEqual(len(resp.body), len(self.full.body))

    def test_changed_export(self):
        job, name = SRC.export()
        before = SRC.request("GET", f"/exports/{name}").body
        changed = SRC.faults(change_export={"name": name, "mode": "append", "bytes": 10})["actions"]["changed_export"]
        self.assertEqual(changed["new_size"], len(before) + 10)
        resp = SRC.request("GET", f"/exports/{name}", headers={"Range": f"bytes={len(before)}-"})
        self.assertEqual((resp.status, resp.header("Content-Range")),
                         (206, f"bytes {len(before)}-{len(before) + 9}/{len(before) + 10}"))
        self.assertEqual(SRC.request("DELETE", f"/exports/{name}").json(), {"status": "OK"})
        self.assertNotIn(name, SRC.request("GET", "/exports").json())


class UploadTests(unittest.TestCase):
    def test_single_request_upload(self):
        data = os.urandom(3000)
        us = new_upload(DST, len(data), "some/dir/small.zip")
        self.assertEqual((us["type"], us["file_offset"], us["filename"]), ("import", 0, "small.zip"))
        self.assertRegex(us["id"], ID_RE)
        self.assertNotIn("path", us)
        resp = DST.request("POST", f"/uploads/{us['id']}", data, headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(resp.status, 200)
        info = resp.json()
        self.assertEqual((info["name"], info["size"], info["extension"]), ("small.zip", 3000, "zip"))
        assert_app_error(self, DST.request("GET", f"/uploads/{us['id']}"), 404, "app.upload.get.app_error")
        self.assertIn(f"{us['id']}_small.zip", DST.request("GET", "/imports").json())
        self.assertEqual(DST.request("DELETE", f"/imports/{us['id']}_small.zip").status, 404)  # not on 9.11

    def test_first_chunk_rule_and_content_length(self):
        data = os.urandom(6 * MIB)
        us = new_upload(DST, len(data))
        resp = DST.request("POST", f"/uploads/{us['id']}", data[:MIB])
        assert_app_error(self, resp, 400, "app.upload.upload_data.first_part_too_small.app_error")
        self.assertEqual(get_offset(DST, us["id"]), 0)
        resp = DST.request("POST", f"/uploads/{us['id']}", data[:5 * MIB])
        self.assertEqual((resp.status, resp.body), (204, b""))
        self.assertEqual(get_offset(DST, us["id"]), 5 * MIB)
        files = {f["name"]: f["size"] for f in DST.files()["imports"]}
        self.assertEqual(files[f"{us['id']}_archive.zip.tmp"], 5 * MIB)
        self.assertNotIn(f"{us['id']}_archive.zip.tmp", DST.request("GET", "/imports").json())
        resp = DST.request("POST", f"/uploads/{us['id']}", data[5 * MIB - 1:])
        assert_app_error(self, resp, 400, "api.upload.upload_data.invalid_content_length")
        self.assertEqual(get_offset(DST, us["id"]), 5 * MIB)
        mine = DST.request("GET", "/users/me/uploads").json()
        self.assertIn(us["id"], [u["id"] for u in mine])
        resp = DST.request("POST", f"/uploads/{us['id']}", data[5 * MIB:])
        self.assertEqual(resp.status, 200)

    def test_duplicate_resend_is_appended(self):
        data = os.urandom(12 * MIB)
        us = new_upload(DST, len(data))
        for _ in range(2):
            self.assertEqual(DST.request("POST", f"/uploads/{us['id']}", data[:5 * MIB]).status, 204)
        self.assertEqual(get_offset(DST, us["id"]), 10 * MIB)

    def test_offset_advances_by_bytes_received(self):
        data = os.urandom(8 * MIB)
        us = new_upload(DST, len(data))
        self.assertEqual(DST.request("POST", f"/uploads/{us['id']}", data[:5 * MIB]).status, 204)
        # The client sends half of what it announced, then hangs up.
        head = (f"POST /api/v4/uploads/{us['id']} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {DST.admin_token}\r\n"
                f"Content-Length: {2 * MIB}\r\n\r\n").encode()
        raw_exchange(DST.port, head + data[5 * MIB:5 * MIB + MIB], close_after_send=True)
        deadline = time.monotonic() + 10
        while get_offset(DST, us["id"]) != 6 * MIB:
            self.assertLess(time.monotonic(), deadline, "offset did not advance by the bytes received")
            time.sleep(0.05)
        # An injected cut keeps the bytes before the cut as well.
        DST.faults(upload_cut={"after_bytes": 1000})
        with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
            DST.request("POST", f"/uploads/{us['id']}", data[6 * MIB:])
        self.assertEqual(get_offset(DST, us["id"]), 6 * MIB + 1000)
        resp = DST.request("POST", f"/uploads/{us['id']}", data[6 * MIB + 1000:])
        self.assertEqual(resp.status, 200)

    def test_chunked_body_excess_dropped(self):
        us = new_upload(DST, 100, "chunked.zip")
        body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (b"a" * 60, b"b" * 90)) + b"0\r\n\r\n"
        head = (f"POST /api/v4/uploads/{us['id']} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {DST.admin_token}\r\n"
                f"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
        reply = raw_exchange(DST.port, head + body)
        self.assertTrue(reply.startswith(b"HTTP/1.1 200 "), reply[:200])
        files = {f["name"]: f["size"] for f in DST.files()["imports"]}
        self.assertEqual(files[f"{us['id']}_chunked.zip"], 100)

    def test_too_large_and_invalid_sessions(self):
        resp = DST.request("POST", "/uploads", {"type": "import", "filename": "x.zip", "file_size": 104857601})
        assert_app_error(self, resp, 413, "api.upload.create.upload_too_large.app_error")
        resp = DST.request("POST", "/uploads", {"type": "import", "filename": "x.zip", "file_size": 0})
        assert_app_error(self, resp, 400, "model.upload_session.is_valid.file_size.app_error")


class ImportTests(unittest.TestCase):
    def test_round_trip(self):
        with FakeServer(job_pending_seconds=0.1, job_run_seconds=0.1) as target:
            self.round_trip(target)

    def round_trip(self, DST):
        job, name = SRC.export(include_attachments=True, include_archived_channels=True,
                               include_profile_pictures=True)
        archive = SRC.request("GET", f"/exports/{name}").body
        us = new_upload(DST, len(archive), "migration.zip")
        self.assertEqual(DST.request("POST", f"/uploads/{us['id']}", archive).status, 200)
        import_name = f"{us['id']}_migration.zip"
        self.assertIn(import_name, DST.request("GET", "/imports").json())
        job = DST.request("POST", "/jobs", {"type": "import_process", "data": {
            "import_file": import_name, "local_mode": "false", "extract_content": "false"}}).json()
        job = DST.wait_job(job["id"])
        self.assertEqual(job["status"], "success", job)
        self.assertNotIn(import_name, DST.request("GET", "/imports").json())
        source, target = SRC.model(), DST.model()
        self.assertEqual(source["teams"], target["teams"])
        self.assertEqual(source["users"], target["users"])
        self.assertEqual(source["direct_channels"], target["direct_channels"])
        for key in ("teams", "channels", "users", "posts", "direct_posts", "attachments"):
            self.assertEqual(source["counts"][key], target["counts"][key], key)
        # The file is gone, so a second import of the same name fails.
        again = DST.request("POST", "/jobs", {"type": "import_process", "data": {"import_file": import_name}}).json()
        again = DST.wait_job(again["id"])
        self.assertEqual(again["status"], "error")
        self.assertNotIn("line_number", again["data"])
        # Importing the same archive again matches everything: nothing is duplicated.
        us = new_upload(DST, len(archive), "again.zip")
        self.assertEqual(DST.request("POST", f"/uploads/{us['id']}", archive).status, 200)
        job = DST.request("POST", "/jobs", {"type": "import_process",
                                            "data": {"import_file": f"{us['id']}_again.zip"}}).json()
        self.assertEqual(DST.wait_job(job["id"])["status"], "success")
        self.assertEqual(DST.model()["counts"], target["counts"])
        # Reconciliation can be made to find something missing.
        DST.delete_channel("eng", "off-topic")
        self.assertNotIn("off-topic", [c["name"] for t in DST.model()["teams"] if t["name"] == "eng"
                                       for c in t["channels"]])

    def test_bad_line_stops_import(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = write_bulk_zip(os.path.join(tmp, "bad.zip"), [
                {"type": "version", "version": 1},
                {"type": "team", "team": {"name": "zeta", "display_name": "Zeta", "type": "O"}},
                {"type": "channel", "channel": {"team": "missing-team", "name": "c1", "type": "O"}},
                {"type": "team", "team": {"name": "never", "display_name": "Never", "type": "O"}},
            ])
            with open(path, "rb") as fh:
                data = fh.read()
        us = new_upload(DST, len(data), "bad.zip")
        self.assertEqual(DST.request("POST", f"/uploads/{us['id']}", data).status, 200)
        job = DST.request("POST", "/jobs", {"type": "import_process",
                                            "data": {"import_file": f"{us['id']}_bad.zip"}}).json()
        job = DST.wait_job(job["id"])
        self.assertEqual((job["status"], job["progress"]), ("error", -1))
        self.assertEqual(job["data"]["line_number"], "3")
        self.assertTrue(job["data"]["error"])
        teams = [t["name"] for t in DST.model()["teams"]]
        self.assertIn("zeta", teams)       # lines before the failure stay applied
        self.assertNotIn("never", teams)
        self.assertIn(f"{us['id']}_bad.zip", DST.request("GET", "/imports").json())  # kept on failure

    def test_missing_import_file(self):
        job = DST.request("POST", "/jobs", {"type": "import_process", "data": {"import_file": "nope.zip"}}).json()
        job = DST.wait_job(job["id"])
        self.assertEqual(job["status"], "error")
        self.assertIn("file", job["data"]["error"])


class FaultTests(unittest.TestCase):
    def test_429_plain_text_with_retry_after(self):
        SRC.faults(errors={"path": "^/api/v4/system/ping$", "status": 429, "retry_after": 2, "count": 1})
        resp = SRC.request("GET", "/system/ping")
        self.assertEqual(resp.status, 429)
        self.assertEqual(resp.body, b"limit exceeded\n")
        self.assertTrue(resp.header("Content-Type").startswith("text/plain"))
        self.assertEqual(resp.header("Retry-After"), "2")
        self.assertEqual(SRC.request("GET", "/system/ping").status, 200)

    def test_5xx_bodies(self):
        SRC.faults(errors=[{"path": "/system/ping", "status": 502}, {"path": "/system/ping", "status": 503}])
        resp = SRC.request("GET", "/system/ping")
        self.assertEqual(resp.status, 502)
        self.assertIn(b"<html>", resp.body)
        resp = SRC.request("GET", "/system/ping")
        assert_app_error(self, resp, 503, "api.context.server_busy.app_error")

    def test_lost_response_after_job_creation(self):
        SRC.faults(lose_response={"path": "^/api/v4/jobs$", "method": "POST"})
        before = {j["id"] for j in SRC.request("GET", "/jobs/type/extract_content?per_page=200").json()}
        with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
            SRC.request("POST", "/jobs", {"type": "extract_content"})
        after = {j["id"] for j in SRC.request("GET", "/jobs/type/extract_content?per_page=200").json()}
        self.assertEqual(len(after - before), 1)  # the job exists although the client saw no answer

    def test_request_log_has_no_secrets(self):
        SRC.reset_log()
        SRC.login()
        SRC.request("GET", "/users/me", headers={"Range": "bytes=0-"})
        SRC.model()
        # Only this test's requests: an earlier test's last request may be logged late.
        log = [e for e in SRC.log() if e["path"] in ("/api/v4/users/login", "/api/v4/users/me")]
        self.assertEqual([e["path"] for e in log], ["/api/v4/users/login", "/api/v4/users/me"])
        self.assertTrue(log[1]["headers"]["authorization"])
        self.assertEqual(log[1]["headers"]["range"], "bytes=0-")
        self.assertEqual(log[0]["status"], 200)
        text = json.dumps(log)
        for secret in (SRC.admin_token, SRC.credentials["admin"]["password"]):
            self.assertNotIn(secret, text)

    def test_config_masking_and_patch(self):
        cfg = SRC.request("GET", "/config").json()
        self.assertEqual(cfg["SqlSettings"]["DataSource"], "*" * 32)
        self.assertEqual(cfg["FileSettings"]["PublicLinkSalt"], "*" * 32)
        resp = SRC.request("PUT", "/config/patch", {"FileSettings": {"MaxFileSize": 2 * 104857600}})
        self.assertEqual(resp.json()["FileSettings"]["MaxFileSize"], 2 * 104857600)
        self.assertEqual(SRC.request("GET", "/config").json()["FileSettings"]["MaxFileSize"], 2 * 104857600)
        resp = SRC.request("PUT", "/config/patch", {"ImportSettings": {"Directory": "/tmp/elsewhere"}})
        assert_app_error(self, resp, 403, "api.config.update_config.not_allowed_security.app_error")
        client = SRC.request("GET", "/config/client?format=old").json()
        self.assertEqual(client["Version"], "9.11.2")


class ServerVariantTests(unittest.TestCase):
    def test_random_export_naming_before_7_2(self):
        with FakeServer(seed="small", version="7.0.0") as old:
            job, name = old.export()
            self.assertNotEqual(name, f"{job['id']}_export.zip")
            self.assertRegex(name, r"^[ybndrfg8ejkmcpqxot1uwisza345h769]{26}_export\.zip$")

    def test_cloud_refuses_import_uploads(self):
        with FakeServer(cloud=True, fault={"jobs_stay_pending": True}) as cloud:
            resp = cloud.request("POST", "/uploads", {"type": "import", "filename": "a.zip", "file_size": 10})
            assert_app_error(self, resp, 400, "api.file.cloud_upload.app_error")
            self.assertNotIn("MaxFileSize", cloud.request("GET", "/config").json()["FileSettings"])
            self.assertTrue(cloud.control("GET", "faults")["jobs_stay_pending"])  # --fault at startup

    def test_local_mode_socket(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "mm.sock")
            with FakeServer(socket=path):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(path)
                sock.sendall(b"GET /api/v4/exports HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                reply = b""
                while True:
                    data = sock.recv(65536)
                    if not data:
                        break
                    reply += data
                sock.close()
                self.assertTrue(reply.startswith(b"HTTP/1.1 200 "), reply[:100])
                self.assertTrue(reply.endswith(b"[]"))


if __name__ == "__main__":
    unittest.main()
