"""A clone is the whole project: no tracked file reads or cites a folder beside the repository,
points at one machine's absolute paths, or is a scratch file of a test run (ctest's Testing/)."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from cw_testlib import SOURCE  # noqa: E402

# Spelled in pieces so that this file does not match itself.
FORBIDDEN = [b".." + b"/shared", b"CW_" + b"SHARED_DIR", b"shared" + b"/spec", b"shared" + b"/testdata",
             b"/wo" + b"rk/"]


def tracked_files(root):
    out = subprocess.run(["git", "-C", root, "ls-files", "-z"], capture_output=True, check=True)
    return [p for p in out.stdout.decode().split("\0") if p]


def offending(root):
    """(path, needle) for every tracked file that holds a forbidden string, plus Testing/ files."""
    found = []
    for path in tracked_files(root):
        if path.split("/", 1)[0] == "Testing":
            found.append((path, "ctest scratch file"))
            continue
        full = os.path.join(root, path)
        if not os.path.isfile(full):
            continue
        with open(full, "rb") as f:
            data = f.read()
        found += [(path, n.decode()) for n in FORBIDDEN if n in data]
    return found


class SelfContained(unittest.TestCase):
    def test_no_tracked_file_refers_outside_the_clone(self):
        if not os.path.isdir(os.path.join(SOURCE, ".git")):
            self.skipTest("not a git checkout")
        self.assertEqual(offending(SOURCE), [])

    def test_the_check_finds_a_planted_reference_and_a_committed_testing_folder(self):
        with tempfile.TemporaryDirectory() as root:
            subprocess.run(["git", "init", "-q", root], check=True)
            os.makedirs(os.path.join(root, "docs"))
            os.makedirs(os.path.join(root, "Testing"))
            with open(os.path.join(root, "docs", "a.md"), "wb") as f:
                f.write(b"see " + FORBIDDEN[0] + b"/seed/page.md\n")
            with open(os.path.join(root, "docs", "clean.md"), "w") as f:
                f.write("nothing here\n")
            with open(os.path.join(root, "Testing", "LastTest.log"), "w") as f:
                f.write("log\n")
            subprocess.run(["git", "-C", root, "add", "."], check=True)
            self.assertEqual(offending(root), [("Testing/LastTest.log", "ctest scratch file"),
                                               ("docs/a.md", FORBIDDEN[0].decode())])


if __name__ == "__main__":
    unittest.main(verbosity=2)
