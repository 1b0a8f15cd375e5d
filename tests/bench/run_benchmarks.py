#!/usr/bin/python3
"""Times convert_weight against `cp -r`, `cp -r && sync` and the Python peers on the same files.

    tests/bench/run_benchmarks.py --work DIR [--layers 32] [--mixtral-layers 4] [--reps 3]
                                  [--phases llama,ckpt,bin,mixtral,distributed,deepseek] [--warm]
                                  [--distributed-layers 4] [--label NAME] [--doc docs/benchmarks.md]

Generates synthetic checkpoints with tests/bench/make_checkpoint (llama-2-7B shape as a sharded
safetensors folder, as a .ckpt and as a sharded .bin folder, a Mixtral-8x7B shape with fewer
layers), then, in phases that each keep only their own files on disk, runs every command of the
phase once per repetition, alternating, under /usr/bin/time -v. Before each command it syncs and,
unless --warm, drops the page cache (root only), so every command reads its input from the disk.

Two floors per input: `cp -r` (exits with its bytes still in memory) and `cp -r && sync` (the same
durability as convert_weight, which fsyncs its output before renaming it into place). The table
gives medians of wall time and system CPU, with ratios to both floors, GB/s of input and peak RSS.
System CPU twice: the command's own (vs cp -r), and the whole machine's during the command (vs
cp -r && sync), which also counts the kernel's writeback threads: they write cp's pages for it,
while convert_weight starts its writeback itself, in its own system time;
it checks that --threads 1 and the default thread count write identical bytes, and with --doc
replaces the section of that label in the given Markdown file. Exits non-zero if a command or a
check fails.

Python peers, as the reference converter works (whole shards in memory, no fsync): torch 1.13's
torch.load + rename + torch.save on the .bin folder; with the newer-Debian chroot of
tests/tools/make_extended_chroot.sh (found at $CW_EXTENDED_CHROOT or ~/.cache/convert_weight/sid,
on the same disk as --work), safetensors' per-shard load_file + rename + save_file on the
safetensors folder, run inside the chroot.

The deepseek phase (not run by default) writes a DeepSeek-V3 FP8 release at real sizes
(--deepseek-layers, --deepseek-experts) and times its conversion to the bf16 MCore folder, against
the per-shard torch dequantisation of DeepSeek's fp8_cast_bf16 when the chroot is present.

The distributed phase cuts a llama-2-7B-shaped folder of --distributed-layers layers into a
tensor-parallel set of 4 ranks (convert --strategy, with a strategy written by
tests/e2e/ms_split.py) and times merging it: to one .ckpt, and merged and reversed to an HF folder
in one pass, against `cp -r` (+ sync) of the rank folders.
"""

import argparse
import hashlib
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
    def __init__(self, name, argv, input_path, output, floors=None, compare_threads=False):
        self.name = name
        self.argv = argv
        self.input_path = input_path
        self.output = output
        self.floors = floors  # Floors of the same input, or None for a floor itself
        self.compare_threads = compare_threads
        self.seconds = []
        self.sys_seconds = []
        self.machine_sys_seconds = []
        self.rss_kb = []


class Floors:
    """`cp -r` and `cp -r && sync` of one input: the rows every command on it is compared with."""

    def __init__(self, label, source, work):
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        out, out_sync = work / f"out-cp-{slug}", work / f"out-cps-{slug}"
        self.cp = Command(f"cp -r ({label})", ["cp", "-r", str(source), str(out)], source, out)
        self.cp_sync = Command(f"cp -r && sync ({label})",
                               ["sh", "-c", f'cp -r "{source}" "{out_sync}" && sync'], source,
                               out_sync)
        self.cp_sync.floors = self

    def commands(self):
        return [self.cp, self.cp_sync]


def extended_chroot():
    root = Path(os.environ.get("CW_EXTENDED_CHROOT") or
                Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) /
                "convert_weight/sid")
    return root if (root / "usr/bin/python3").exists() else None


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
        self.notes = []

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
        machine_sys = machine_system_seconds()
        result = subprocess.run(["/usr/bin/time", "-v"] + cmd.argv, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        machine_sys = machine_system_seconds() - machine_sys
        if result.returncode != 0:
            self.failures.append(f"{cmd.name}: exit {result.returncode}\n{result.stderr[-2000:]}")
            return
        wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
        system = re.search(r"System time \(seconds\): ([\d.]+)", result.stderr)
        hours, minutes, seconds = wall.groups()
        cmd.seconds.append(int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds))
        cmd.sys_seconds.append(float(system.group(1)))
        cmd.machine_sys_seconds.append(machine_sys)
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
        """Compares by digest, each output removed before the next is written, so that the disk
        never holds two outputs (the DeepSeek-V3 one is 28 GB)."""
        single = cmd.output.with_name("threads1-" + cmd.output.name)
        remove(single)
        default = tree_digests(cmd.output)
        remove(cmd.output)
        self.run([a.replace(str(cmd.output), str(single)) for a in cmd.argv] + ["--threads", "1"])
        same = tree_digests(single) == default
        self.checks.append((cmd.name, same))
        if not same:
            self.failures.append(f"{cmd.name}: --threads 1 wrote different bytes")
        remove(single)

    def convert(self, name, rules, source, output, floors, *extra):
        # A folder output is named with a trailing slash.
        target = str(output) + ("/" if not output.suffix else "")
        argv = [self.cw, "convert", "--rules", str(SOURCE / "rules" / rules), "--input", str(source),
                "--output", target, "--quiet", *extra]
        return Command(name, argv, source, output, floors=floors, compare_threads=True)

    def all(self):
        phases = self.args.phases.split(",")
        self.work.mkdir(parents=True, exist_ok=True)
        for phase in ("llama", "ckpt", "bin", "mixtral", "distributed", "deepseek"):
            if phase in phases:
                getattr(self, phase + "_phase")()

    def peer_work(self, name):
        """A folder for a phase with a Python peer in the newer-Debian chroot, whose Python sees
        only files inside it: under the chroot when it is on the disk of --work (then the chroot
        path, else None, and a note says why there is no peer)."""
        chroot = extended_chroot()
        if chroot is not None and chroot.stat().st_dev == self.work.stat().st_dev:
            work = chroot / "var/tmp" / name
            remove(work)
            work.mkdir(parents=True)
            return work, chroot
        self.notes.append(f"no Python peer for {name}: the newer-Debian chroot "
                          "(tests/tools/make_extended_chroot.sh) is "
                          + ("not on the disk of --work" if chroot else "not installed"))
        work = self.work / name
        work.mkdir(parents=True, exist_ok=True)
        return work, None

    def peer(self, name, chroot, work, script, source, output, floors):
        """`script` (from tests/bench) run inside the chroot on `source`, writing `output`."""
        for s in (script, "torch_baseline.py"):
            shutil.copy(SOURCE / "tests/bench" / s, work)
        inside = Path("/") / work.relative_to(chroot)
        return Command(name, ["chroot", str(chroot), "/usr/bin/python3", str(inside / script),
                              str(inside / source.name), str(inside / output.name)],
                       source, output, floors=floors)

    def llama_phase(self):
        a = self.args
        work, chroot = self.peer_work("cw-bench-llama")
        hf = work / "hf"
        print(f"== llama2-7b shape, {a.layers} layers: safetensors folder", flush=True)
        self.make("llama2-7b", a.layers, "safetensors", hf)
        floors = Floors("HF safetensors folder", hf, work)
        commands = floors.commands() + [
            self.convert("HF safetensors -> .ckpt (rename)", "llama.yaml", hf, work / "out.ckpt",
                         floors),
            self.convert("HF safetensors -> .ckpt --dtype fp16 (cast)", "llama.yaml", hf,
                         work / "out-fp16.ckpt", floors, "--dtype", "fp16"),
        ]
        if chroot:
            commands.append(self.peer(
                "Python: safetensors load_file + rename + save_file per shard (no fsync)", chroot,
                work, "safetensors_baseline.py", hf, work / "out-py", floors))
        self.phase(commands)
        remove(work)

    def deepseek_phase(self):
        a = self.args
        work, chroot = self.peer_work("cw-bench-deepseek")
        fp8 = work / "fp8"
        print(f"== DeepSeek-V3 FP8, {a.deepseek_layers} layers, {a.deepseek_experts} experts",
              flush=True)
        self.run([self.args.make_checkpoint, "--shape", "deepseek-v3", "--layers",
                  str(a.deepseek_layers), "--experts", str(a.deepseek_experts), "--dtype", "fp8",
                  "--format", "safetensors", "--out", str(fp8)], stdout=subprocess.DEVNULL)
        floors = Floors("DeepSeek-V3 FP8 folder", fp8, work)
        commands = floors.commands() + [
            self.convert("DeepSeek-V3 FP8 -> bf16 MCore folder (dequantise, fuse experts)",
                         "deepseek3.yaml", fp8, work / "out-mcore", floors)]
        if chroot:
            commands.append(self.peer(
                "Python: torch 2 per-shard FP8 -> bf16 as fp8_cast_bf16 (no renames, no fsync)",
                chroot, work, "fp8_cast_baseline.py", fp8, work / "out-py", floors))
        self.phase(commands)
        remove(work)

    def ckpt_phase(self):
        a = self.args
        hf, ckpt = self.work / "hf-for-ckpt", self.work / "model.ckpt"
        print(f"== llama2-7b shape, {a.layers} layers: .ckpt", flush=True)
        self.make("llama2-7b", a.layers, "safetensors", hf)
        self.run([self.cw, "convert", "--rules", str(SOURCE / "rules/llama.yaml"), "--input",
                  str(hf), "--output", str(ckpt), "--quiet"])
        config = self.work / "llama-config.json"
        shutil.copy(hf / "config.json", config)
        remove(hf)
        floors = Floors(".ckpt", ckpt, self.work)
        self.phase(floors.commands() + [
            self.convert(".ckpt -> HF safetensors folder (rename)", "llama.yaml", ckpt,
                         self.work / "out-hf", floors, "--reverse", "--config", str(config)),
            self.convert(".ckpt -> HF safetensors folder --dtype fp16 (cast)", "llama.yaml", ckpt,
                         self.work / "out-hf16", floors, "--reverse", "--config", str(config),
                         "--dtype", "fp16"),
        ])
        remove(ckpt)
        remove(config)

    def bin_phase(self):
        a = self.args
        bins = self.work / "bin"
        print(f"== llama2-7b shape, {a.layers} layers: sharded .bin folder", flush=True)
        self.make("llama2-7b", a.layers, "bin", bins)
        floors = Floors(".bin folder", bins, self.work)
        baseline = Command("Python: torch 1.13 torch.load + rename + torch.save (no fsync)",
                           [PYTHON, str(SOURCE / "tests/bench/torch_baseline.py"), str(bins),
                            str(self.work / "out-py.bin")], bins, self.work / "out-py.bin",
                           floors=floors)
        self.phase(floors.commands() + [
            baseline,
            self.convert(".bin folder -> .ckpt (rename)", "llama.yaml", bins,
                         self.work / "out-bin.ckpt", floors),
        ])
        remove(bins)

    def mixtral_phase(self):
        a = self.args
        mixtral = self.work / "mixtral"
        print(f"== mixtral-8x7b shape, {a.mixtral_layers} layers, {a.mixtral_experts} experts",
              flush=True)
        self.make("mixtral-8x7b", a.mixtral_layers, "safetensors", mixtral, a.mixtral_experts)
        floors = Floors("Mixtral folder", mixtral, self.work)
        self.phase(floors.commands() + [
            self.convert("Mixtral HF -> .ckpt (expert stacking)", "mixtral.yaml", mixtral,
                         self.work / "out-mixtral.ckpt", floors),
        ])
        remove(mixtral)

    def distributed_phase(self):
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
        shutil.copy(hf / "config.json", self.work / "tp-config.json")
        remove(hf)
        (dist / "strategy.ckpt").write_bytes(strategy.read_bytes())
        floors = Floors("4 rank folders", dist, self.work)
        merge = Command("merge TP=4 -> .ckpt", [self.cw, "merge", "--input", str(dist), "--output",
                                                str(self.work / "out-merged.ckpt"), "--quiet"],
                        dist, self.work / "out-merged.ckpt", floors=floors, compare_threads=True)
        reverse = self.convert("merge + reverse TP=4 -> HF folder", "llama.yaml", dist,
                               self.work / "out-dist-hf", floors, "--reverse", "--config",
                               str(self.work / "tp-config.json"))
        self.phase(floors.commands() + [merge, reverse])
        for p in (dist, strategy, self.work / "tp-config.json"):
            remove(p)

    def table(self):
        lines = ["| command | input GB | median s | × cp -r | × cp -r && sync | sys s | × cp sys | "
                 "machine sys s | × cp -r && sync machine sys | GB/s | peak RSS MiB | runs (s) |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]

        def ratio(c, floor, values):
            if floor is None or not getattr(floor, values):
                return ""
            return f"{statistics.median(getattr(c, values)) / statistics.median(getattr(floor, values)):.2f}"

        for c in self.rows:
            if not c.seconds:
                lines.append(f"| {c.name} | | failed | | | | | | | | | |")
                continue
            gb = c.input_bytes / 1e9
            median = statistics.median(c.seconds)
            cp = c.floors.cp if c.floors else None
            cp_sync = c.floors.cp_sync if c.floors and c is not c.floors.cp_sync else None
            lines.append(
                f"| {c.name} | {gb:.2f} | {median:.2f} | {ratio(c, cp, 'seconds')} | "
                f"{ratio(c, cp_sync, 'seconds')} | {statistics.median(c.sys_seconds):.2f} | "
                f"{ratio(c, cp, 'sys_seconds')} | "
                f"{statistics.median(c.machine_sys_seconds):.2f} | "
                f"{ratio(c, cp_sync, 'machine_sys_seconds')} | {gb / median:.2f} | "
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


def tree_digests(path):
    """{relative file name: sha256} of a file or of the files under a folder."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    digests = {}
    for f in files:
        h = hashlib.sha256()
        with open(f, "rb") as stream:
            while chunk := stream.read(1 << 24):
                h.update(chunk)
        digests[str(f.relative_to(path))] = h.hexdigest()  # "." for a file
    return digests


def machine_system_seconds():
    """System CPU of the whole machine so far (/proc/stat: system, irq, softirq). A process's own
    system time leaves out the writeback the kernel's flusher threads do for it: cp's dirty pages
    are written by them, while convert_weight starts writeback itself (sync_file_range, fsync)."""
    fields = open("/proc/stat").readline().split()
    return sum(int(f) for f in fields[3:4] + fields[6:8]) / os.sysconf("SC_CLK_TCK")


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
    p.add_argument("--phases", default="llama,ckpt,bin,mixtral,distributed",
                   help="comma-separated: llama, ckpt, bin, mixtral, distributed, deepseek "
                        "(DeepSeek-V3 FP8 at real sizes: about 16 GB in, 28 GB out)")
    p.add_argument("--deepseek-layers", type=int, default=2,
                   help="DeepSeek-V3 layers: the first dense, the others with all experts")
    p.add_argument("--deepseek-experts", type=int, default=256)
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
        + (f"--deepseek-layers {args.deepseek_layers} --deepseek-experts {args.deepseek_experts} "
           if "deepseek" in args.phases else "")
        + f"--reps {args.reps}`: {cores} cores ({cpu}), {mem:.1f} GiB memory, disk "
        f"{disk(bench.work)}, Linux {platform.release()}; {cache}. Medians of {args.reps} runs, "
        f"commands alternating.", "", table, "",
        f"`--threads 1` against the default ({os.cpu_count()} threads), output bytes: {checks}.",
        *([""] + [f"Note: {n}." for n in bench.notes] if bench.notes else []),
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
