"""The Debian package: `cpack -G DEB` from the build directory (as
docs/building.md says), unpacked with `dpkg-deb -x` into a temporary root (no
root needed, nothing installed), and the binary run from there. The package
must hold every file the Dockerfile puts under /usr (binary, man pages, bash
and zsh completion), at the same paths and with the same contents.

cpack comes with cmake and dpkg-deb with dpkg, both there on any Debian
machine that builds mmigrate (scripts/deps.sh); on Debian their absence is a
failure, not a skip. Elsewhere (no /etc/debian_version) the test is skipped.
"""
import os
import re
import shutil
import subprocess
import unittest

import harness
from harness import Workdir, SRC, BIN

BUILD = os.path.dirname(os.path.abspath(BIN))


def project_version():
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        return re.search(r"project\(mmigrate VERSION (\S+)", f.read()).group(1)


def dockerfile_copies():
    """(source path in the tree, destination) of each COPY --from=build in the Dockerfile."""
    with open(os.path.join(SRC, "Dockerfile")) as f:
        text = f.read()
    return re.findall(r"^COPY --from=build /src/(\S+) (/\S+)$", text, re.M)


class DebPackage(unittest.TestCase):
    def setUp(self):
        missing = [t for t in ("cpack", "dpkg-deb") if not shutil.which(t)]
        if missing and not os.path.exists("/etc/debian_version"):
            self.skipTest("not Debian: no %s" % ", ".join(missing))
        self.assertEqual(missing, [], "%s not found: the .deb cannot be built or unpacked; install cmake "
                         "(cpack) and dpkg (dpkg-deb): bash scripts/deps.sh" % " and ".join(missing))
        self.assertTrue(os.path.exists(os.path.join(BUILD, "CPackConfig.cmake")),
                        "no CPackConfig.cmake in %s: MMIGRATE_BIN must be the build directory's binary" % BUILD)
        self.wd = Workdir(self)

    def build_deb(self):
        """Runs cpack with its output (and staging) in the workdir, not in the build directory."""
        out = os.path.join(self.wd.path, "pkg")
        p = subprocess.run(["cpack", "-G", "DEB", "-B", out, "--config", os.path.join(BUILD, "CPackConfig.cmake")],
                           cwd=BUILD, capture_output=True, text=True, timeout=50)
        self.assertEqual(p.returncode, 0, "cpack -G DEB failed:\n" + p.stdout + p.stderr)
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        self.assertEqual(len(debs), 1, os.listdir(out))
        self.assertEqual(debs[0], "mmigrate_%s_%s.deb" % (project_version(), self.arch()))
        return os.path.join(out, debs[0])

    def arch(self):
        if shutil.which("dpkg"):
            return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
        return "amd64"

    def test_package_unpacks_and_runs(self):
        deb = self.build_deb()
        root = os.path.join(self.wd.path, "root")
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True, timeout=30)
        binary = os.path.join(root, "usr", "bin", "mmigrate")
        p = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "mmigrate %s\n" % project_version())
        # What the Dockerfile installs, the package installs: same paths, same files.
        copies = dockerfile_copies()
        self.assertIn(("build/mmigrate", "/usr/bin/mmigrate"), copies)
        self.assertGreaterEqual(len(copies), 5, copies)
        for src, dest in copies:
            path = os.path.join(root, dest.lstrip("/"))
            self.assertTrue(os.path.isfile(path), "the package has no %s (the Dockerfile's copy of %s)"
                            % (dest, src))
            if not src.startswith("build/"):
                with open(os.path.join(SRC, src), "rb") as a, open(path, "rb") as b:
                    self.assertEqual(a.read(), b.read(), "%s in the package is not %s" % (dest, src))
        # The control file: the name, version and the runtime libraries.
        info = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Version", "Depends"],
                              capture_output=True, text=True, check=True).stdout
        self.assertIn("Package: mmigrate\n", info)
        self.assertIn("Version: %s\n" % project_version(), info)
        self.assertIn("libcurl4", info)


if __name__ == "__main__":
    harness.main()
