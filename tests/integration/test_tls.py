"""TLS against a fake served over HTTPS with a throw-away self-signed
certificate: verification on by default (an unknown CA is refused), a
plan's ca_file makes it trusted, and insecure_skip_tls_verify works only
when written, with a warning."""
import os
import subprocess
import unittest

import harness
from harness import Workdir, run
from fakelib import FakeServer

PLAN = """version: 1
name: tls
servers:
  mm:
    url: ${env:MM_URL}
    token: ${env:MM_TOKEN}
%s
steps:
  - {id: login, type: auth, server: mm}
"""


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = Workdir()
        cls.cert = os.path.join(cls.certs.path, "cert.pem")
        cls.key = os.path.join(cls.certs.path, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-keyout", cls.key, "-out", cls.cert, "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        cls.srv = FakeServer(tls_cert=cls.cert, tls_key=cls.key).start()

    @classmethod
    def tearDownClass(cls):
        import shutil
        cls.srv.stop()
        shutil.rmtree(cls.certs.path, ignore_errors=True)

    def apply(self, extra, code):
        wd = Workdir(self)
        p = wd.plan(PLAN % extra)
        return run(["apply", p], env={"MM_URL": self.srv.url, "MM_TOKEN": self.srv.admin_token},
                   check_exit=code)

    def test_unknown_ca_is_refused(self):
        self.assertTrue(self.srv.url.startswith("https://"))
        r = self.apply("", 1)
        self.assertIn("GET /api/v4/users/me", r.stderr)
        self.assertRegex(r.stderr, "(?i)certificate")

    def test_ca_file_makes_it_trusted(self):
        r = self.apply("    ca_file: %s" % self.cert, 0)
        self.assertIn("logged in to 'mm' as 'admin'", r.stdout)

    def test_insecure_only_when_written_and_warned(self):
        r = self.apply("    insecure_skip_tls_verify: true", 0)
        self.assertIn("TLS verification is off", r.stdout + r.stderr)

    def test_missing_ca_file_is_a_clear_error(self):
        r = self.apply("    ca_file: /nonexistent/ca.pem", 1)
        self.assertIn("/nonexistent/ca.pem", r.stderr)


if __name__ == "__main__":
    harness.main()
