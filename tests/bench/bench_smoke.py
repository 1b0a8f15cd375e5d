#!/usr/bin/python3
"""Runs tests/bench/run_benchmarks.py on a configuration of about 1 GB, once, in a temporary folder
(warm page cache): every command must succeed and --threads 1 must write the bytes of --threads 2.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

here = Path(__file__).resolve().parent
with tempfile.TemporaryDirectory(prefix="cw-bench-") as work:
    result = subprocess.run(
        ["/usr/bin/python3", str(here / "run_benchmarks.py"), "--work", work, "--cw",
         os.environ["CW_BIN"], "--make-checkpoint", os.environ["CW_MAKE_CHECKPOINT"], "--layers",
         "1", "--mixtral-layers", "1", "--mixtral-experts", "2", "--distributed-layers", "1",
         "--reps", "1", "--warm"],
        capture_output=True, text=True)
print(result.stdout)
print(result.stderr, file=sys.stderr)
problems = []
if result.returncode != 0:
    problems.append(f"run_benchmarks.py exited {result.returncode}")
for row in ["cp -r (HF folder)", "HF safetensors -> .ckpt (rename)", ".ckpt -> HF safetensors folder",
            "--dtype fp16 (cast)", "Python: torch.load", ".bin folder -> .ckpt",
            "Mixtral HF -> .ckpt (expert stacking)", "merge TP=4 -> .ckpt",
            "merge + reverse TP=4 -> HF folder"]:
    # A measured row of the table (progress lines name the commands too, so they do not count).
    if not any(line.startswith("| ") and row in line and "| failed |" not in line
               for line in result.stdout.splitlines()):
        problems.append(f"no measured table row for {row!r}")
if result.stdout.count(": identical") != 7:
    problems.append("expected 7 identical --threads 1 / default outputs")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
