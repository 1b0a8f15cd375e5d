"""The plumbing the optional extended tests share (test_extended_clients.py,
test_extended_families.py): finding the Debian sid chroot, skipping (exit 77) when it cannot be
used, a fresh work folder under its /tmp, and running a script of this folder inside it with
`chroot ROOT /usr/bin/python3` in a clean, offline environment.

Runs outside the chroot, with Debian 12's python. docs/interop.md describes the chroot.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("CW_EXTENDED_CHROOT") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "convert_weight", "sid")
KEEP = os.environ.get("CW_EXTENDED_KEEP", "") not in ("", "0")
SKIP = 77
HINT = "build it with tests/tools/make_extended_chroot.sh or set CW_EXTENDED_CHROOT"


def chroot_binary():
    return shutil.which("chroot", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def skip(reason):
    print(f"skipped: {reason}")
    sys.exit(SKIP)


def describe_failure(p):
    return f"exit {p.returncode}\n--- stderr (tail) ---\n{p.stderr[-6000:]}"


class Work:
    """A fresh folder under ROOT/tmp holding copies of this folder's chroot-side scripts.
    `path` is the folder as seen from here, `inner` as seen inside the chroot."""

    def __init__(self, prefix, scripts):
        self.path = tempfile.mkdtemp(prefix=prefix, dir=os.path.join(ROOT, "tmp"))
        self.inner = "/tmp/" + os.path.basename(self.path)
        for script in scripts:
            shutil.copy(os.path.join(HERE, script), os.path.join(self.path, script))

    def inside(self, path):
        """A path under self.path as seen inside the chroot."""
        return self.inner + path[len(self.path):]

    def python(self, script, *args, timeout=1200):
        """Runs SCRIPT (copied into the work folder) inside the chroot with a clean, offline
        environment; returns the CompletedProcess (text mode)."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": f"{self.inner}/home",
            "HF_HOME": f"{self.inner}/home/hf", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "TORCHINDUCTOR_CACHE_DIR": f"{self.inner}/home/inductor",  # not the chroot's /tmp
            "UCX_LOG_LEVEL": "fatal",  # sid's torch links UCX, which logs to stdout without /proc
            "OMP_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "false",
        }
        return subprocess.run([chroot_binary(), ROOT, "/usr/bin/python3",
                               f"{self.inner}/{script}", *args],
                              env=env, capture_output=True, text=True, timeout=timeout)

    def remove(self):
        if KEEP:
            print(f"kept {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def open_work(prefix, scripts, binary):
    """Checks that the chroot can be used (else prints "skipped: ..." and exits 77) and that
    `binary` (our convert_weight) is executable (else exits 1); returns (Work, versions), the
    versions of the chroot's python, torch, safetensors, transformers and numpy.
    check_in_chroot.py (which answers the version probe) is always copied in."""
    if not os.path.isdir(ROOT):
        skip(f"no chroot at {ROOT} ({HINT})")
    if not os.path.exists(os.path.join(ROOT, "usr/bin/python3")):
        skip(f"{ROOT} has no /usr/bin/python3 ({HINT})")
    if os.geteuid() != 0:
        skip("chroot needs root")
    if not chroot_binary():
        skip("no chroot command")
    if not os.access(binary, os.X_OK):
        print(f"CW_BIN={binary!r} is not an executable", file=sys.stderr)
        sys.exit(1)
    work = Work(prefix, sorted(set(scripts) | {"check_in_chroot.py"}))
    try:
        p = work.python("check_in_chroot.py", "versions", work.inner, timeout=300)
        try:
            with open(os.path.join(work.path, "versions.json"), encoding="utf-8") as f:
                versions = json.load(f)
        except OSError:
            last = (p.stderr.strip().splitlines() or ["no output"])[-1]
            skip(f"{ROOT} lacks python3-torch, python3-safetensors or python3-transformers "
                 f"({last}; {HINT})")
        if int(versions["torch"].split(".")[0]) < 2:
            skip(f"{ROOT} has torch {versions['torch']}, not 2.x")
    except SystemExit:
        work.remove()
        raise
    return work, versions
