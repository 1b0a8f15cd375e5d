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
rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
for row in ["cp -r (HF safetensors folder)", "cp -r && sync (HF safetensors folder)",
            "HF safetensors -> .ckpt (rename)", "HF safetensors -> .ckpt --dtype fp16 (cast)",
            "cp -r && sync (.ckpt)", ".ckpt -> HF safetensors folder (rename)",
            ".ckpt -> HF safetensors folder --dtype fp16 (cast)", "Python: torch 1.13",
            ".bin folder -> .ckpt", "Mixtral HF -> .ckpt (expert stacking)",
            "merge TP=4 -> .ckpt", "merge + reverse TP=4 -> HF folder"]:
    # A measured row of the table (progress lines name the commands too, so they do not count),
    # with a ratio to each floor and system time.
    measured = [line for line in rows if row in line and "| failed |" not in line]
    if not measured:
        problems.append(f"no measured table row for {row!r}")
    elif not row.startswith("cp -r") and "|  |" in measured[0]:
        problems.append(f"a column is empty in {measured[0]!r}")
if result.stdout.count(": identical") != 8:
    problems.append("expected 8 identical --threads 1 / default outputs")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
