"""The fault matrix of docs/reliability.md: every fault the fake can inject
(read from mmfake.Faults, so a new fault without a row fails this test) and
every local one, with the test that injects it and the outcome it proves.
`MMIGRATE_WRITE_DOCS=1 python3 tests/integration/test_fault_matrix.py`
rewrites the table between the markers; otherwise the test checks it is current."""
import os
import unittest

import harness
import mmfake

SERVER = {
    "errors": ("test_download, test_upload_process, test_auth_export", "5xx/429/408 retried with backoff and Retry-After; other 4xx fail the step with the AppError id; rerun resumes"),
    "lose_response": ("test_adoption", "the job or upload session the lost answer created is found and adopted: never two"),
    "delay": ("test_adoption, test_migration", "kill -9 inside the window between create and answer: the next run adopts"),
    "job_fail": ("test_auth_export, test_upload_process", "the step fails with data.error (and line number); a rerun starts a new job"),
    "job_stall": ("test_auth_export", "the wait ends at the step's timeout with the job id; rerun waits for the same job"),
    "download_drop": ("test_download", "resumed with Range from the bytes held, overlap compared"),
    "upload_cut": ("test_upload_process", "the server's file_offset is read back; no byte appended twice"),
    "upload_stuck": ("test_hostile", "a 204 that stores nothing counts as a failure: the step gives up after 'retries' attempts without progress instead of sending forever"),
    "ignore_range": ("test_download", "a 200 to a Range request is never appended: refetched from 0 and compared"),
    "login_echo": ("test_hostile", "the echoed password is <redacted> in output, state.json and the journal"),
    "download_corrupt": ("test_integrity", "the damaged entry's byte range is fetched again with Range and checked; final SHA-256 equals the source's; a byte wrong on every fetch fails naming the entry"),
    "slow_ranges": ("test_integrity", "kill -9 in the middle of a heal: the next apply resumes and heals"),
    "oversize": ("test_integrity", "bytes past the announced size are never written; the attempt fails and resumes"),
    "download_bps": ("test_migration (torture), test_download", "slow but above the floor: completes; killed mid-transfer: resumes"),
    "upload_bps": ("test_migration", "killed mid-upload: resumes at the server's offset"),
    "jobs_stay_pending": ("test_auth_export", "the wait goes on until the timeout; nothing is created twice"),
    "expire_sessions": ("test_auth_export, test_download", "401 → one new login with the plan's password, request resent"),
    "change_export": ("test_download, test_migration", "a changed file is detected (size or overlap bytes) and refetched, at most 3 times"),
    "clear": ("(control)", "clears faults"),
}
SERVER_ONLY_HOSTILE = [
    ("oversized JSON answer (Content-Length or streamed)", "test_hostile", "refused at 1 MiB (16 MiB for listings/config) before parsing"),
    ("deeply nested JSON", "test_hostile", "refused at 64 levels before cJSON parses"),
    ("ESC / CR LF / C1 in server strings", "test_hostile", "printed escaped; no forged lines"),
    ("body trickling at 3 B/s", "test_hostile", "cut per min_speed_window; the step fails at transfer_deadline (< 2 min by default)"),
]
LOCAL = [
    ("ENOSPC / EIO on open, write, fsync, rename, fsync(dir) of state.json", "test_state (unit), test_crash_sweep", "the old state.json stays whole; the next apply resumes"),
    ("ENOSPC / EIO at every N-th seam call of a whole migration", "test_crash_sweep", "next apply: identical bytes, one export, one upload, one import"),
    ("process ends (_exit) at every N-th seam call", "test_crash_sweep", "same as above"),
    ("kill -9 at random moments", "test_migration (torture)", "same as above, 50 kills per CI run"),
    ("read-only state directory (EROFS on every seam call)", "test_download (LocalFaults)", "exit 1 naming 'Read-only file system'; nothing written; the next apply completes"),
    ("deleted .part mid-download", "test_download (LocalFaults)", "the step fails (the bytes went to an unlinked file, the rename finds no .part); the next apply downloads again"),
    ("plan locked by another run", "test_engine", "exit 3 naming the holder's pid"),
    ("symlink planted at .part, state.json.tmp, journal.jsonl, lock", "test_hostile", "refused (O_NOFOLLOW); the link target untouched"),
    ("state dir a symlink, foreign-owned, or group/other-writable", "test_hostile, test_state", "refused with the dir, owner/mode and the fix"),
]

BEGIN, END = "<!-- fault-matrix:begin -->", "<!-- fault-matrix:end -->"


def table():
    keys = list(mmfake.Faults.LIST_KEYS + mmfake.Faults.ONE_KEYS + mmfake.Faults.VALUE_KEYS
                + mmfake.Faults.ACTION_KEYS)
    lines = ["| fault | where | injected by | outcome |", "|---|---|---|---|"]
    for k in keys:
        test, outcome = SERVER[k]
        lines.append("| `%s` | server (mmfake) | %s | %s |" % (k, test, outcome))
    for what, test, outcome in SERVER_ONLY_HOSTILE:
        lines.append("| %s | server (hostile) | %s | %s |" % (what, test, outcome))
    for what, test, outcome in LOCAL:
        lines.append("| %s | local | %s | %s |" % (what, test, outcome))
    return "\n".join(lines) + "\n", keys


class FaultMatrixTest(unittest.TestCase):
    def test_every_fake_fault_has_a_row_and_the_doc_is_current(self):
        text, keys = table()
        self.assertEqual(sorted(set(keys) - set(SERVER)), [], "faults without a row in the matrix")
        path = os.path.join(harness.SRC, "docs", "reliability.md")
        with open(path) as f:
            doc = f.read()
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        new = head + BEGIN + "\n" + text + END + tail
        if os.environ.get("MMIGRATE_WRITE_DOCS"):
            with open(path, "w") as f:
                f.write(new)
        self.assertEqual(doc, new, "docs/reliability.md is stale: MMIGRATE_WRITE_DOCS=1 python3 %s" % __file__)


if __name__ == "__main__":
    harness.main()
