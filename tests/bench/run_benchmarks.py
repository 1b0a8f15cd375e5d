#!/usr/bin/python3
"""Times convert_weight against `cp -r` and a torch.load + torch.save baseline on the same files.

    tests/bench/run_benchmarks.py --work DIR [--layers 32] [--mixtral-layers 4] [--reps 3]
                                  [--phases llama,bin,mixtral,distributed]
                                  [--distributed-layers 4] [--label NAME] [--doc docs/benchmarks.md]

Generates synthetic checkpoints with tests/bench/make_checkpoint (llama-2-7B shape as a sharded
safetensors folder and as a sharded .bin folder, a Mixtral-8x7B shape with fewer layers), then, in
three phases that each keep only their own files on disk, runs every command of the phase once per
repetition, alternating, under /usr/bin/time -v. Before each command it syncs and, when it may
(root), drops the page cache, so every command reads its input from the disk. It prints a table of
medians (wall seconds, ratio to `cp -r` of the same input, GB/s of input, peak RSS), checks that
--threads 1 and the default thread count write identical bytes, and with --doc replaces the section
of that label in the given Markdown file. Exits non-zero if a command or a check fails.

The distributed phase cuts a llama-2-7B-shaped folder of --distributed-layers layers into a
tensor-parallel set of 4 ranks (convert --strategy, with a strategy written by
tests/e2e/ms_split.py) and times merging it: to one .ckpt, and merged and reversed to an HF folder
in one pass, against `cp -r` (+ sync) of the rank folders.
"""

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"  # Debian's, with python3-torch


class Command:
    def __init__(self, name, argv, input_path, output, floor=None, compare_threads=False):
        self.name = name
        self.argv = argv
        self.input_path = input_path
        self.output = output
        self.floor = floor  # name of the row this one is compared with
        self.compare_threads = compare_threads
        self.seconds = []
        self.rss_kb = []


def tree_bytes(path):
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def remove(path):
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.work).resolve()
        self.cw = str(Path(args.cw).resolve())
        self.can_drop = os.geteuid() == 0 and not args.warm
        self.failures = []
        self.rows = []
        self.checks = []

    def run(self, argv, **kw):
        return subprocess.run(argv, check=True, **kw)

    def quiet_disk(self):
        os.sync()
        if self.can_drop:
            Path("/proc/sys/vm/drop_caches").write_text("3\n")

    def make(self, shape, layers, fmt, out, experts=None):
        argv = [self.args.make_checkpoint, "--shape", shape, "--layers", str(layers), "--format",
                fmt, "--dtype", "bf16", "--out", str(out)]
        if experts:
            argv += ["--experts", str(experts)]
        self.run(argv, stdout=subprocess.DEVNULL)

    def timed(self, cmd):
        self.quiet_disk()
        result = subprocess.run(["/usr/bin/time", "-v"] + cmd.argv, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            self.failures.append(f"{cmd.name}: exit {result.returncode}\n{result.stderr[-2000:]}")
            return
        wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
        hours, minutes, seconds = wall.groups()
        cmd.seconds.append(int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds))
        cmd.rss_kb.append(int(rss.group(1)))

    def phase(self, commands):
        """Runs the commands alternately; each output is removed once measured (and, the last
        time, compared with a --threads 1 run), so the disk holds one output at a time."""
        for cmd in commands:
            cmd.input_bytes = tree_bytes(cmd.input_path)
        for rep in range(self.args.reps):
            for cmd in commands:
                self.timed(cmd)
                print(f"  rep {rep + 1}/{self.args.reps} {cmd.name}: "
                      f"{f'{cmd.seconds[-1]} s' if len(cmd.seconds) > rep else self.failures[-1]}",
                      flush=True)
                if rep + 1 == self.args.reps and cmd.compare_threads and cmd.output.exists():
                    self.compare_threads(cmd)
                remove(cmd.output)
        self.rows += commands

    def compare_threads(self, cmd):
        single = cmd.output.with_name("threads1-" + cmd.output.name)
        remove(single)
        self.run([a.replace(str(cmd.output), str(single)) for a in cmd.argv] + ["--threads", "1"])
        same = subprocess.run(["diff", "-r", "-q", str(cmd.output), str(single)],
                              stdout=subprocess.DEVNULL).returncode == 0
        self.checks.append((cmd.name, same))
        if not same:
            self.failures.append(f"{cmd.name}: --threads 1 wrote different bytes")
        remove(single)

    def convert(self, name, rules, source, output, *extra, floor="cp -r (HF folder)"):
        # A folder output is named with a trailing slash.
        target = str(output) + ("/" if not output.suffix else "")
        argv = [self.cw, "convert", "--rules", str(SOURCE / "rules" / rules), "--input", str(source),
                "--output", target, "--quiet", *extra]
        return Command(name, argv, source, output, floor=floor, compare_threads=True)

    def all(self):
        phases = self.args.phases.split(",")
        self.work.mkdir(parents=True, exist_ok=True)
        if "llama" in phases or "bin" in phases or "mixtral" in phases:
            self.single_file_phases(phases)
        if "distributed" in phases:
            self.distributed()

    def distributed(self):
        a = self.args
        hf, dist = self.work / "hf-tp", self.work / "dist-tp4"
        for p in (hf, dist):
            remove(p)
        print(f"== llama2-7b shape, {a.distributed_layers} layers, tensor parallel x 4", flush=True)
        self.make("llama2-7b", a.distributed_layers, "safetensors", hf)
        sys.path.insert(0, str(SOURCE / "tests/e2e"))
        sys.path.insert(0, str(SOURCE / "tests/interop"))
        os.environ.setdefault("CW_SOURCE_DIR", str(SOURCE))
        import ms_split  # noqa: E402
        layouts = {}
        names = ["model.tok_embeddings.embedding_weight", "model.norm_out.weight", "lm_head.weight"]
        for i in range(a.distributed_layers):
            names += [f"model.layers.{i}.{n}" for n in (
                "attention_norm.weight", "attention.wq.weight", "attention.wk.weight",
                "attention.wv.weight", "attention.wo.weight", "feed_forward.w1.weight",
                "feed_forward.w2.weight", "feed_forward.w3.weight", "ffn_norm.weight")]
        for n in names:
            tmap = ([-1] if "norm" in n else [-1, 0] if n.endswith(("wo.weight", "w2.weight"))
                    else [0, -1])
            layouts[n] = ms_split.Layout([4], tmap)
        strategy = self.work / "tp4_strategy.ckpt"
        ms_split.write_strategy(str(strategy), layouts)
        self.run([self.cw, "convert", "--rules", str(SOURCE / "rules/llama.yaml"), "--input",
                  str(hf), "--output", str(dist) + "/", "--strategy", str(strategy), "--quiet"])
        remove(hf)
        (dist / "strategy.ckpt").write_bytes(strategy.read_bytes())
        cp = Command("cp -r (4 rank folders)", ["cp", "-r", str(dist), str(self.work / "out-cpd")],
                     dist, self.work / "out-cpd")
        cp_sync = Command("cp -r rank folders, then sync",
                          ["sh", "-c", f'cp -r "{dist}" "{self.work}/out-cpds" && sync'], dist,
                          self.work / "out-cpds", floor=cp.name)
        merge = Command("merge TP=4 -> .ckpt", [self.cw, "merge", "--input", str(dist), "--output",
                                                str(self.work / "out-merged.ckpt"), "--quiet"],
                        dist, self.work / "out-merged.ckpt", floor=cp_sync.name,
                        compare_threads=True)
        reverse = self.convert("merge + reverse TP=4 -> HF folder", "llama.yaml", dist,
                               self.work / "out-dist-hf", "--reverse", floor=cp_sync.name)
        self.phase([cp, cp_sync, merge, reverse])
        remove(dist)
        remove(strategy)

    def single_file_phases(self, phases):
        hf, ckpt, bins, mixtral = (self.work / n for n in ("hf", "model.ckpt", "bin", "mixtral"))
        for p in (hf, ckpt, bins, mixtral):
            remove(p)

        if "llama" in phases:
            self.llama_phase()
        if "bin" in phases:
            self.bin_phase()
        if "mixtral" in phases:
            self.mixtral_phase()

    def llama_phase(self):
        a = self.args
        hf, ckpt = self.work / "hf", self.work / "model.ckpt"
        print(f"== llama2-7b shape, {a.layers} layers: safetensors folder and .ckpt", flush=True)
        self.make("llama2-7b", a.layers, "safetensors", hf)
        self.run([self.cw, "convert", "--rules", str(SOURCE / "rules/llama.yaml"), "--input",
                  str(hf), "--output", str(ckpt), "--quiet"])
        cp = Command("cp -r (HF folder)", ["cp", "-r", str(hf), str(self.work / "out-cp")], hf,
                     self.work / "out-cp")
        cp_sync = Command("cp -r, then sync", ["sh", "-c", f'cp -r "{hf}" "{self.work}/out-cps" && sync'],
                          hf, self.work / "out-cps", floor=cp.name)
        self.phase([
            cp, cp_sync,
            self.convert("HF safetensors -> .ckpt (rename)", "llama.yaml", hf, self.work / "out.ckpt"),
            self.convert(".ckpt -> HF safetensors folder", "llama.yaml", ckpt, self.work / "out-hf",
                         "--reverse", "--config", str(hf / "config.json")),
            self.convert("HF bf16 -> .ckpt --dtype fp16 (cast)", "llama.yaml", hf,
                         self.work / "out-fp16.ckpt", "--dtype", "fp16"),
        ])
        remove(ckpt)
        remove(hf)

    def bin_phase(self):
        a = self.args
        bins = self.work / "bin"
        print(f"== llama2-7b shape, {a.layers} layers: sharded .bin folder", flush=True)
        self.make("llama2-7b", a.layers, "bin", bins)
        cp_bin = Command("cp -r (.bin folder)", ["cp", "-r", str(bins), str(self.work / "out-cpb")],
                         bins, self.work / "out-cpb")
        baseline = Command("Python: torch.load + rename + torch.save",
                           [PYTHON, str(SOURCE / "tests/bench/torch_baseline.py"), str(bins),
                            str(self.work / "out-py.bin")], bins, self.work / "out-py.bin",
                           floor=cp_bin.name)
        self.phase([
            cp_bin, baseline,
            self.convert(".bin folder -> .ckpt (rename)", "llama.yaml", bins,
                         self.work / "out-bin.ckpt", floor=cp_bin.name),
        ])
        remove(bins)

    def mixtral_phase(self):
        a = self.args
        mixtral = self.work / "mixtral"
        print(f"== mixtral-8x7b shape, {a.mixtral_layers} layers, {a.mixtral_experts} experts",
              flush=True)
        self.make("mixtral-8x7b", a.mixtral_layers, "safetensors", mixtral, a.mixtral_experts)
        cp_mix = Command("cp -r (Mixtral folder)", ["cp", "-r", str(mixtral), str(self.work / "out-cpm")],
                         mixtral, self.work / "out-cpm")
        self.phase([
            cp_mix,
            self.convert("Mixtral HF -> .ckpt (expert stacking)", "mixtral.yaml", mixtral,
                         self.work / "out-mixtral.ckpt", floor=cp_mix.name),
        ])
        remove(mixtral)

    def table(self):
        by_name = {c.name: c for c in self.rows}
        lines = ["| command | input GB | median s | × cp -r | GB/s | peak RSS MiB | runs (s) |",
                 "|---|---:|---:|---:|---:|---:|---|"]
        for c in self.rows:
            if not c.seconds:
                lines.append(f"| {c.name} | | failed | | | | |")
                continue
            gb = c.input_bytes / 1e9
            median = statistics.median(c.seconds)
            floor = by_name.get(c.floor)
            ratio = (f"{median / statistics.median(floor.seconds):.2f}"
                     if floor and floor.seconds else "1.00")
            lines.append(f"| {c.name} | {gb:.2f} | {median:.2f} | {ratio} | {gb / median:.2f} | "
                         f"{statistics.median(c.rss_kb) / 1024:.0f} | "
                         f"{', '.join(f'{s:.2f}' for s in c.seconds)} |")
        return "\n".join(lines)

    def commands_text(self):
        out = []
        for c in self.rows:
            argv = " ".join(str(a) for a in c.argv)
            argv = argv.replace(str(self.work), "$WORK").replace(str(SOURCE) + "/", "")
            argv = argv.replace(self.cw, "convert_weight")
            out.append(f"    {argv}")
        return "\n".join(out)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1))
    return cpu, os.cpu_count(), mem_kb / 1024 / 1024


def disk(path):
    df = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True).stdout.split("\n")[1]
    device, fstype = df.split()[:2]
    return f"{device} ({fstype})"


def write_doc(doc, label, text):
    begin, end = f"<!-- results: {label} -->", f"<!-- end results: {label} -->"
    body = doc.read_text() if doc.exists() else "# Benchmarks\n"
    block = f"{begin}\n{text}\n{end}"
    if begin in body and end in body:
        body = body[:body.index(begin)] + block + body[body.index(end) + len(end):]
    else:
        body = body.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(body)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", required=True, help="scratch folder on the disk to measure")
    p.add_argument("--cw", default=str(SOURCE / "build/cli/convert_weight"))
    p.add_argument("--make-checkpoint", default=str(SOURCE / "build/tests/bench/make_checkpoint"))
    p.add_argument("--layers", type=int, default=32, help="llama2-7b layers (32: the real model)")
    p.add_argument("--mixtral-layers", type=int, default=4)
    p.add_argument("--mixtral-experts", type=int, default=8)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--phases", default="llama,bin,mixtral,distributed",
                   help="comma-separated: llama, bin, mixtral, distributed")
    p.add_argument("--distributed-layers", type=int, default=4,
                   help="layers of the tensor-parallel set (4: about 2.1 GB)")
    p.add_argument("--warm", action="store_true", help="do not drop the page cache")
    p.add_argument("--label", default=None, help="section name in --doc")
    p.add_argument("--doc", default=None, help="Markdown file whose section to replace")
    args = p.parse_args()

    bench = Bench(args)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    bench.all()
    table = bench.table()
    cpu, cores, mem = machine()
    cache = ("page cache dropped before every command" if bench.can_drop
             else "page cache NOT dropped (not root, or --warm): inputs may be read from memory")
    checks = "; ".join(f"{n}: {'identical' if ok else 'DIFFERENT'}" for n, ok in bench.checks)
    text = "\n".join([
        f"Measured {started} by `tests/bench/run_benchmarks.py --layers {args.layers} "
        f"--mixtral-layers {args.mixtral_layers} --mixtral-experts {args.mixtral_experts} "
        f"--phases {args.phases} --distributed-layers {args.distributed_layers} "
        f"--reps {args.reps}`: {cores} cores ({cpu}), {mem:.1f} GiB memory, disk "
        f"{disk(bench.work)}, Linux {platform.release()}; {cache}. Medians of {args.reps} runs, "
        f"commands alternating.", "", table, "",
        f"`--threads 1` against the default ({os.cpu_count()} threads), output bytes: {checks}.",
        "", "Commands ($WORK is the scratch folder):", "", bench.commands_text()])
    print(text)
    if args.doc:
        write_doc(Path(args.doc), args.label or f"llama2-7b-{args.layers}", text)
    if bench.failures:
        print("\n".join(["FAILED:"] + bench.failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
