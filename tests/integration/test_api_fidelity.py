"""API behaviours of the real server that mmigrate must respect, each checked
against the fake (tests/fake/mmfake.py) through its request log:

- a refused login is sent once (no re-login hook on a refusal);
- local mode: uploads owned by "nouser" (model.UploadNoUserID) and listed at
  /users/nouser/uploads, the version read with a GET, a 401 explained;
- MFA: codes cannot be reused; mfa_secret makes a fresh code per login;
- stall detection is off by default for export (and extract) jobs;
- a lost create answer under replica lag adopts the job, not a second one;
- extract on a server without content extraction explains itself;
- password sessions are logged out at the end of a run;
- `mmigrate server ... exports|imports|uploads|jobs` and `job_id:` adoption.

Credentials are the fake's generated fixtures; none may show up in output.
"""
import json
import os
import tempfile
import time
import unittest

import harness
from harness import Workdir, run
from fakelib import FakeServer, totp, write_bulk_zip

HEAD = """version: 1
name: api
servers:
  mm:
{server}
steps:
"""
TOKEN = "    url: ${env:MM_URL}\n    token: ${env:MM_TOKEN}\n"
LOGIN = "    url: ${env:MM_URL}\n    username: ${env:MM_USER}\n    password: ${env:MM_PASSWORD}\n"
AUTH = "  - {id: login, type: auth, server: mm}\n"
EXPORT = "  - {id: export, type: export, server: mm, poll_interval: 1s, timeout: 60s%s}\n"


class ApiFidelity(unittest.TestCase):
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

    @staticmethod
    def requests(srv, method, suffix):
        return [e for e in srv.log() if e["method"] == method and e["path"].endswith(suffix)]

    def assert_clean(self, secrets, *texts):
        """No secret in the output, the state or the journal."""
        state_dir = self.wd.state_dir("api")
        for name in ("state.json", "journal.jsonl"):
            path = os.path.join(state_dir, name)
            if os.path.exists(path):
                with open(path) as f:
                    texts += (f.read(),)
        for s in secrets:
            for t in texts:
                self.assertNotIn(s, t)

    # -- item 2: a refused login is not repeated --------------------------------
    def test_wrong_password_is_sent_once(self):
        srv = self.fake()
        p = self.plan(LOGIN, AUTH)
        env = dict(self.env(srv), MM_PASSWORD="not-the-password")
        r = run(["apply", p], env=env, check_exit=1)
        self.assertIn("cannot log in as 'admin'", r.stderr)
        logins = self.requests(srv, "POST", "/users/login")
        self.assertEqual([e["status"] for e in logins], [401], logins)
        self.assertEqual(self.requests(srv, "POST", "/users/logout"), [])
        self.assert_clean(["not-the-password"], r.stdout, r.stderr)

    # -- item 9: password sessions are logged out ------------------------------
    def test_password_session_logged_out_token_not(self):
        srv = self.fake()
        p = self.plan(LOGIN, AUTH)
        r = run(["apply", p], env=self.env(srv), check_exit=0)
        log = srv.log()
        paths = [(e["method"], e["path"], e["status"]) for e in log]
        self.assertEqual(paths[0], ("POST", "/api/v4/users/login", 200))
        self.assertEqual(paths[-1], ("POST", "/api/v4/users/logout", 200))
        self.assertTrue(log[-1]["headers"].get("authorization"))
        self.assert_clean([srv.credentials["admin"]["password"]], r.stdout, r.stderr)
        # A personal access token has no session of ours to end.
        srv.reset_log()
        p = self.plan(TOKEN, AUTH)
        run(["apply", p], env=self.env(srv), check_exit=0)
        self.assertEqual(self.requests(srv, "POST", "/users/logout"), [])

    # -- item 3: MFA codes --------------------------------------------------------
    def test_mfa_code_reuse_refused_and_secret_makes_fresh_codes(self):
        srv = self.fake()
        mfa = srv.credentials["mfa"]
        # One fixed code: the first run logs in, the resumed run sends the same code and is refused.
        p = self.plan(LOGIN + "    mfa: ${env:MM_MFA}\n", AUTH)
        env = {"MM_URL": srv.url, "MM_USER": "mfauser", "MM_PASSWORD": mfa["password"],
               "MM_MFA": totp(mfa["mfa_secret"])}
        r1 = run(["apply", p], env=env, check_exit=1)   # mfauser is no system admin
        self.assertIn("not a system admin", r1.stderr)
        r2 = run(["apply", p], env=env, check_exit=1)
        self.assertIn("api.user.check_user_mfa.bad_code.app_error", r2.stderr)
        self.assertEqual([e["status"] for e in self.requests(srv, "POST", "/users/login")], [200, 401])
        # mfa_secret: each login computes its code; back-to-back runs both get in,
        # although the fixed code above took the current time step already.
        srv.reset_log()
        p = self.plan(LOGIN + "    mfa_secret: ${env:MM_MFA_SECRET}\n", AUTH)
        env = {"MM_URL": srv.url, "MM_USER": "mfauser", "MM_PASSWORD": mfa["password"],
               "MM_MFA_SECRET": mfa["mfa_secret"]}
        outs = []
        for _ in range(2):
            r = run(["apply", p], env=env, check_exit=1)
            self.assertIn("not a system admin", r.stderr)
            outs += [r.stdout, r.stderr]
        ok = [e for e in self.requests(srv, "POST", "/users/login") if e["status"] == 200]
        self.assertEqual(len(ok), 2)
        # Each run also logged its session out.
        self.assertEqual(len(self.requests(srv, "POST", "/users/logout")), 2)
        self.assert_clean([mfa["mfa_secret"], mfa["password"]], *outs)

    def test_mfa_keys_validated(self):
        p = self.plan(LOGIN + "    mfa: ${env:A}\n    mfa_secret: ${env:B}\n", AUTH)
        r = run(["validate", p], check_exit=2)
        self.assertIn("not both", r.stderr)
        p = self.plan(LOGIN + "    mfa_secret: LITERAL-IS-REFUSED\n", AUTH)
        r = run(["validate", p], check_exit=2)
        self.assertIn("'mfa_secret' must be ${env:NAME} or ${file:PATH}", r.stderr)

    # -- items 1 and 7: local mode ------------------------------------------------
    def test_local_mode_upload_nouser_and_version(self):
        sock = os.path.join(Workdir(self).path, "mm.sock")
        # The create answer is lost: the session must be found again in the
        # local listing, which only "/users/nouser/uploads" returns.
        srv = self.fake(socket=sock, fault={"lose_response": [
            {"path": "^/api/v4/uploads$", "method": "POST", "count": 1}]})
        archive = os.path.join(Workdir(self).path, "small.zip")
        write_bulk_zip(archive, [{"type": "version", "version": 1}])
        p = self.plan("    socket: %s\n" % sock,
                      AUTH + "  - {id: upload, type: upload, server: mm, file: %s, unverified: true}\n" % archive)
        r = run(["apply", p], check_exit=0)
        self.assertIn("was created although the answer was lost", r.stdout)
        state = self.wd.state("api")["steps"]
        self.assertEqual(state["login"]["outputs"]["server_version"], "9.11.2")
        log = srv.log()
        self.assertEqual(len([e for e in log if e["method"] == "POST" and e["path"] == "/api/v4/uploads"]), 1)
        listings = [e["path"] for e in log if e["path"].endswith("/uploads") and e["method"] == "GET"]
        self.assertTrue(listings)
        self.assertEqual(set(listings), {"/api/v4/users/nouser/uploads"})
        self.assertIn(state["upload"]["outputs"]["name"], os.listdir(srv.import_dir))
        self.assertEqual(self.requests(srv, "POST", "/users/logout"), [])

    def test_local_mode_401_is_not_a_token_problem(self):
        sock = os.path.join(Workdir(self).path, "mm.sock")
        srv = self.fake(socket=sock, fault={"errors": [{"path": "^/api/v4/exports$", "status": 401}]})
        p = self.plan("    socket: %s\n" % sock, EXPORT % "")
        r = run(["apply", p], check_exit=1)
        self.assertIn("not allowed in local mode", r.stderr)
        self.assertNotIn("renew", r.stderr)
        self.assertEqual(len([e for e in srv.log() if e["path"] == "/api/v4/exports"]), 1)

    # -- item 4: stall detection off by default for export ---------------------------
    def test_export_stall_detection_default_off(self):
        srv = self.fake(seed="small", fault={"job_stall": [{"type": "export_process", "count": 2}]})
        p = self.plan(TOKEN, EXPORT.replace("timeout: 60s", "timeout: 4s") % "")
        r = run(["apply", p], env=self.env(srv), check_exit=1)
        self.assertIn("after the step's timeout", r.stderr)
        self.assertNotIn("shows no change", r.stderr)
        # Still settable.
        p = self.plan(TOKEN, EXPORT % ", stall_timeout: 1s")
        r = run(["apply", p], env=self.env(srv), check_exit=1)
        self.assertIn("shows no change for 1s", r.stderr)

    # -- item 5: replica lag ---------------------------------------------------------
    def test_lost_create_answer_under_replica_lag(self):
        lose = {"lose_response": [{"path": "^/api/v4/jobs$", "method": "POST", "count": 1}]}
        srv = self.fake(seed="small", replica_lag_seconds=2, fault=lose)
        p = self.plan(TOKEN, EXPORT % ", adopt_wait: 6s")
        r = run(["apply", p], env=self.env(srv), check_exit=0)
        self.assertIn("listing again", r.stdout)
        self.assertIn("created although the answer was lost", r.stdout)
        self.assertEqual(len(srv.control("GET", "/jobs")), 1)
        # Without the wait the job is missed and a second export starts.
        srv.faults(**lose)
        p = self.plan(TOKEN, EXPORT % ", adopt_wait: 0s")
        run(["apply", p], env=self.env(srv), check_exit=0)
        self.assertEqual(len(srv.control("GET", "/jobs")), 3)

    # -- item 8: extract without content extraction ----------------------------------
    def test_extract_on_server_without_it(self):
        srv = self.fake(version="5.39.0")
        p = self.plan(TOKEN, "  - {id: extract, type: extract, server: mm, from: 2024-01-01}\n")
        r = run(["apply", p], env=self.env(srv), check_exit=1)
        self.assertIn("does not know the extract_content job type", r.stderr)
        self.assertIn("6.0 or later", r.stderr)
        self.assertIn("api.job.retrieve.nopermissions", r.stderr)

    # -- item 10: read commands and job_id --------------------------------------------
    def test_server_read_commands(self):
        srv = self.fake(seed="small")
        job, name = srv.export(include_attachments=True)
        p = self.plan(TOKEN, AUTH)
        env = self.env(srv)
        srv.reset_log()
        out = run(["server", p, "mm", "exports", "--output", "json"], env=env, check_exit=0).stdout
        self.assertIn(name, json.loads(out))
        jobs = json.loads(run(["server", p, "mm", "jobs", "export", "--output", "json"], env=env,
                              check_exit=0).stdout)
        self.assertEqual([j["id"] for j in jobs], [job["id"] if isinstance(job, dict) else job])
        one = json.loads(run(["server", p, "mm", "jobs", "export_process", jobs[0]["id"], "--output", "json"],
                             env=env, check_exit=0).stdout)
        self.assertEqual(one["status"], "success")
        text = run(["server", p, "mm", "jobs", "export", jobs[0]["id"]], env=env, check_exit=0).stdout
        self.assertIn("Status: success", text)
        r = run(["server", p, "mm", "jobs", "import", jobs[0]["id"]], env=env, check_exit=1)
        self.assertIn("not 'import_process'", r.stderr)
        self.assertEqual(json.loads(run(["server", p, "mm", "imports", "--output", "json"], env=env,
                                        check_exit=0).stdout), [])
        self.assertEqual(json.loads(run(["server", p, "mm", "uploads", "--output", "json"], env=env,
                                        check_exit=0).stdout), [])
        self.assertEqual({e["method"] for e in srv.log()}, {"GET"})
        run(["server", p, "mm", "teams"], env=env, check_exit=2)
        run(["server", p, "nosuch", "exports"], env=env, check_exit=2)
        # A password server logs in, reads, and logs out again.
        srv.reset_log()
        p = self.plan(LOGIN, AUTH)
        run(["server", p, "mm", "exports"], env=env, check_exit=0)
        self.assertEqual([(e["method"], e["path"]) for e in srv.log()],
                         [("POST", "/api/v4/users/login"), ("GET", "/api/v4/users/me"), ("GET", "/api/v4/exports"),
                          ("POST", "/api/v4/users/logout")])

    def test_job_id_adopts_a_job_made_elsewhere(self):
        srv = self.fake(seed="small")
        made = srv.request("POST", "/jobs", {"type": "export_process",
                                             "data": {"include_attachments": "true"}}).json()
        env = dict(self.env(srv), JOB=made["id"])
        p = self.plan(TOKEN, EXPORT % ', job_id: "${env:JOB}"')
        r = run(["apply", p], env=env, check_exit=0)
        self.assertIn("given as job_id", r.stdout)
        out = self.wd.state("api")["steps"]["export"]["outputs"]
        self.assertEqual(out["job_id"], made["id"])
        self.assertEqual(out["file"], made["id"] + "_export.zip")
        self.assertEqual(len(self.requests(srv, "POST", "/jobs")), 1)   # only the test's own
        # The wrong type, and a job that does not exist.
        p = self.plan(TOKEN, "  - {id: import, type: process, server: mm, file: x.zip, job_id: \"${env:JOB}\"}\n")
        self.assertIn("would adopt import job %s" % made["id"], run(["plan", p], env=env, check_exit=0).stdout)
        r = run(["apply", p], env=env, check_exit=1)
        self.assertIn("is a 'export_process' job, not 'import_process'", r.stderr)
        p = self.plan(TOKEN, EXPORT % ', job_id: "${env:JOB}"')
        r = run(["apply", p], env=dict(env, JOB="a" * 26), check_exit=1)
        self.assertIn("no such job", r.stderr)
        r = run(["plan", p], env=env, check_exit=0)
        self.assertIn("would adopt export_process job %s" % made["id"], r.stdout)


if __name__ == "__main__":
    harness.main()
