"""auth and export against the fake: credentials of every kind, refusals
(wrong password, non-admin, old server), job failures and stalls, pre-7.2
random export names, 429/503 bursts while polling, local (socket) mode."""
import os
import unittest

import harness
from harness import Workdir, run
from fakelib import FakeServer, totp

HEAD = """version: 1
name: ae
servers:
  mm:
{server}
steps:
"""
TOKEN = "    url: ${env:MM_URL}\n    token: ${env:MM_TOKEN}\n"
LOGIN = "    url: ${env:MM_URL}\n    username: ${env:MM_USER}\n    password: ${env:MM_PASSWORD}\n"
MFA = LOGIN + "    mfa: ${env:MM_MFA}\n"
AUTH = "  - {id: login, type: auth, server: mm}\n"
EXPORT = "  - {id: export, type: export, server: mm, poll_interval: 1s, timeout: 60s%s}\n"


class AuthExportTest(unittest.TestCase):
    def fake(self, **opts):
        opts.setdefault("job_pending_seconds", 0.2)
        opts.setdefault("job_run_seconds", 0.3)
        srv = FakeServer(**opts).start()
        self.addCleanup(srv.stop)
        return srv

    def plan(self, server, steps):
        self.wd = Workdir(self)
        return self.wd.plan(HEAD.format(server=server.rstrip("\n")) + steps)

    def env(self, srv, user="admin"):
        c = srv.credentials["admin" if user == "admin" else "user"]
        return {"MM_URL": srv.url, "MM_TOKEN": c["token"], "MM_USER": c["username"],
                "MM_PASSWORD": c["password"]}

    def test_token_and_password_login(self):
        srv = self.fake()
        for server in (TOKEN, LOGIN):
            p = self.plan(server, AUTH)
            r = run(["apply", p], env=self.env(srv), check_exit=0)
            out = self.wd.state("ae")["steps"]["login"]["outputs"]
            self.assertEqual(out["username"], "admin")
            self.assertEqual(out["server_version"], "9.11.2")
            for secret in (srv.admin_token, srv.credentials["admin"]["password"]):
                self.assertNotIn(secret, r.stdout + r.stderr)
        # Password logins read the Token header: a POST /users/login was made.
        self.assertTrue([e for e in srv.log() if e["path"] == "/api/v4/users/login" and e["status"] == 200])

    def test_mfa_login(self):
        srv = self.fake()
        mfa = srv.credentials["mfa"]
        p = self.plan(MFA, AUTH)
        env = {"MM_URL": srv.url, "MM_USER": "mfauser", "MM_PASSWORD": mfa["password"],
               "MM_MFA": totp(mfa["mfa_secret"])}
        r = run(["apply", p], env=env, check_exit=1)
        # The MFA code is accepted (login 200); mfauser is no system admin: refused, clearly.
        self.assertTrue([e for e in srv.log() if e["path"] == "/api/v4/users/login" and e["status"] == 200])
        self.assertIn("account 'mfauser' is not a system admin", r.stderr)
        env["MM_MFA"] = "000000" if env["MM_MFA"] != "000000" else "111111"
        r = run(["apply", p], env=env, check_exit=1)
        self.assertIn("api.user.check_user_mfa.bad_code.app_error", r.stderr)

    def test_wrong_password(self):
        srv = self.fake()
        p = self.plan(LOGIN, AUTH)
        env = self.env(srv)
        env["MM_PASSWORD"] = "not-the-password"
        r = run(["apply", p], env=env, check_exit=1)
        self.assertIn("cannot log in as 'admin'", r.stderr)
        self.assertIn("401", r.stderr)
        self.assertIn("api.user.login.invalid_credentials", r.stderr)
        self.assertNotIn("not-the-password", r.stderr + r.stdout)

    def test_bad_token(self):
        srv = self.fake()
        p = self.plan(TOKEN, AUTH)
        env = self.env(srv)
        env["MM_TOKEN"] = "x" * 26
        r = run(["apply", p], env=env, check_exit=1)
        self.assertIn("credentials were refused", r.stderr)
        self.assertIn("api.context.session_expired.app_error", r.stderr)

    def test_non_admin_refused(self):
        srv = self.fake()
        p = self.plan(TOKEN, AUTH + EXPORT % "")
        r = run(["apply", p], env=self.env(srv, user="alice"), check_exit=1)
        self.assertIn("account 'alice' is not a system admin", r.stderr)
        self.assertFalse([e for e in srv.log() if e["method"] == "POST"])

    def test_old_server_refused(self):
        srv = self.fake(version="5.30.0")
        p = self.plan(TOKEN, AUTH)
        r = run(["apply", p], env=self.env(srv), check_exit=1)
        self.assertIn("runs Mattermost 5.30.0; migrations need 5.33 or later", r.stderr)

    def test_export_success_outputs_file(self):
        srv = self.fake(seed="small")
        p = self.plan(TOKEN, EXPORT % "")
        run(["apply", p], env=self.env(srv), check_exit=0)
        out = self.wd.state("ae")["steps"]["export"]["outputs"]
        self.assertEqual(out["file"], out["job_id"] + "_export.zip")
        jobs = srv.control("GET", "/jobs")
        self.assertEqual(len(jobs), 1)
        # Data values are strings: attachments and archived channels asked for by default.
        self.assertEqual(jobs[0]["data"]["include_attachments"], "true")
        self.assertEqual(jobs[0]["data"]["include_archived_channels"], "true")

    def test_pre_72_random_export_name(self):
        srv = self.fake(seed="small", version="7.1.0")
        srv.export()  # an older export already on the server must not be mistaken for ours
        p = self.plan(TOKEN, EXPORT % "")
        run(["apply", p], env=self.env(srv), check_exit=0)
        out = self.wd.state("ae")["steps"]["export"]["outputs"]
        self.assertNotEqual(out["file"], out["job_id"] + "_export.zip")
        names = [f["name"] for f in srv.files()["exports"]]
        self.assertEqual(len(names), 2)
        self.assertIn(out["file"], names)

    def test_failing_export_job_reports_server_error(self):
        srv = self.fake(seed="small")
        srv.faults(job_fail={"type": "export_process", "error": "disk full — could not write"})
        p = self.plan(TOKEN, EXPORT % "")
        r = run(["apply", p], env=self.env(srv), check_exit=1)
        self.assertIn("ended 'error': disk full — could not write", r.stderr)

    def test_stalled_export_job_times_out(self):
        srv = self.fake(seed="small")
        srv.faults(job_stall={"type": "export_process"})
        p = self.plan(TOKEN, EXPORT % ", stall_timeout: 3s")
        r = run(["apply", p], env=self.env(srv), check_exit=1)
        self.assertIn("shows no change for 3s", r.stderr)
        # The job id is kept: the next run waits for the same job, it does not start another.
        self.assertTrue(self.wd.state("ae")["steps"]["export"]["checkpoint"]["job_id"])

    def test_pending_forever_hits_timeout(self):
        srv = self.fake(seed="small")
        srv.faults(jobs_stay_pending=True)
        p = self.plan(TOKEN, "  - {id: export, type: export, server: mm, poll_interval: 1s, timeout: 3s}\n")
        r = run(["apply", p], env=self.env(srv), check_exit=1)
        self.assertIn("still 'pending' after the step's timeout of 3s", r.stderr)
        # Raising the timeout resumes waiting for the same job: no second export.
        srv.faults(jobs_stay_pending=False)
        with open(p) as f:
            self.wd.plan(f.read().replace("timeout: 3s", "timeout: 60s"))
        run(["apply", p], env=self.env(srv), check_exit=0)
        self.assertEqual(len(srv.control("GET", "/jobs")), 1)

    def test_bursts_of_429_and_503_while_polling(self):
        srv = self.fake(seed="small", job_run_seconds=1)
        srv.faults(errors=[{"path": "^/api/v4/jobs/", "method": "GET", "status": 429, "count": 3, "retry_after": 1},
                           {"path": "^/api/v4/exports$", "method": "GET", "status": 503, "count": 2}])
        p = self.plan(TOKEN, EXPORT % "")
        run(["apply", p], env=self.env(srv), check_exit=0)
        self.assertEqual(len(srv.control("GET", "/jobs")), 1)
        statuses = [e["status"] for e in srv.log()]
        self.assertIn(429, statuses)
        self.assertIn(503, statuses)

    def test_local_socket_mode(self):
        sock = os.path.join(Workdir(self).path, "mm.sock")
        srv = self.fake(seed="small", socket=sock)
        p = self.plan("    socket: %s\n" % sock, AUTH + EXPORT % "")
        r = run(["apply", p], check_exit=0)
        self.assertIn("(local mode)", r.stdout)
        self.assertTrue(self.wd.state("ae")["steps"]["export"]["outputs"]["file"].endswith("_export.zip"))


if __name__ == "__main__":
    harness.main()
