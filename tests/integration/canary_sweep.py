"""Runs last (CTest FIXTURES_CLEANUP): every file any integration test left
under MMIGRATE_TEST_ROOT, the one root all of them keep their temporary
files in, is scanned for the canary credentials harness.py hands the fake
servers. Then the root is emptied for the next run."""
import os
import shutil
import sys

import harness

if __name__ == "__main__":
    root = harness.TEST_ROOT
    count = sum(len(f) for _d, _s, f in os.walk(root))
    try:
        harness.scan_tree_for_canaries(root)
    except AssertionError as exc:
        print("FAIL:", exc)
        sys.exit(1)
    print("canary sweep: %d files left under %s, no canary in any of them" % (count, root))
    shutil.rmtree(root, True)
