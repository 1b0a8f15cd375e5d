"""Fault injection through the CLI: the output folder full or read-only, inputs truncated, rewritten,
deleted or replaced while they are read, SIGINT and SIGTERM while writing each output kind.

Every case checks what a user relies on: a clear message naming the file at fault, a non-zero exit
status, nothing under the output name and no temporary beside it, and the input as it was (hashed
before and after; for a change the test makes itself, as the test left it).

Faults that must land during the conversion stop it first: the process is started, stopped with
SIGSTOP as soon as its temporary output exists (the writer is created, the tensors are not yet
written), faulted, then continued. A case is skipped, not failed, when the machine was so slow to
stop it that most of the output was already written."""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from cw_testlib import BIN, SOURCE, TempDirTest, run  # noqa: E402

QWEN = os.path.join(SOURCE, "tests/data/qwen2_tiny")
QWEN_RULES = os.path.join(SOURCE, "rules/qwen2.yaml")
LLAMA_RULES = os.path.join(SOURCE, "rules/llama.yaml")

BIG_ROWS = 32768  # x 1024 float32: a 128 MiB embedding and head, long enough to stop in the middle
EARLY_BYTES = 32 << 20  # output bytes written when stopped, below which the fault is mid-write


def write_big_hf_folder(folder):
    """A llama-named HF folder with no layers and 256 MiB of zero embedding and head ([vocab, hidden]
    each, as the rules declare), written sparse so that making it costs no disk time. Its times are
    set an hour back so that any later write shows."""
    os.mkdir(folder)
    tensors = [("model.embed_tokens.weight", [BIG_ROWS, 1024]), ("model.norm.weight", [1024]),
               ("lm_head.weight", [BIG_ROWS, 1024])]
    header, offset = {}, 0
    for name, shape in tensors:
        size = 4 * shape[0] * (shape[1] if len(shape) > 1 else 1)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    weights = os.path.join(folder, "model.safetensors")
    with open(weights, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        f.truncate(8 + len(text) + offset)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"num_hidden_layers": 0}, f)
    an_hour_ago = time.time() - 3600
    os.utime(weights, (an_hour_ago, an_hour_ago))
    return weights


def tree_hash(path):
    """SHA-256 over the names and bytes of a file, or of every file under a folder."""
    h = hashlib.sha256()
    files = [path] if os.path.isfile(path) else sorted(
        os.path.join(d, n) for d, _, names in os.walk(path) for n in names)
    for f in files:
        h.update(os.path.relpath(f, path).encode() + b"\0")
        with open(f, "rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def written_bytes(folder):
    """Bytes on disk under a folder: how far the (sized up front, sparse) outputs have come."""
    return sum(os.stat(os.path.join(d, n)).st_blocks * 512
               for d, _, names in os.walk(folder) for n in names)


class FaultTest(TempDirTest):
    def assert_clean_failure(self, returncode, err, code, out_dir, input_path, input_hash, *needles):
        self.assertEqual(returncode, code, err)
        self.assertTrue(err.startswith("convert_weight: "), err)
        for needle in needles:
            self.assertIn(needle, err)
        self.assertEqual(os.listdir(out_dir), [], "output or temporary left behind")
        self.assertEqual(tree_hash(input_path), input_hash, "input changed")

    def run_and_check(self, args, code, out_dir, input_path, *needles):
        before = tree_hash(input_path)
        p = run(*args, check=False)
        self.assert_clean_failure(p.returncode, p.stderr, code, out_dir, input_path, before, *needles)

    def start_stopped(self, args, out_dir):
        """convert_weight `args`, stopped as soon as a temporary appears in `out_dir`."""
        p = subprocess.Popen([BIN, *args], stderr=subprocess.PIPE, text=True)
        self.addCleanup(p.kill)
        while p.poll() is None and not os.listdir(out_dir):
            time.sleep(0.001)
        p.send_signal(signal.SIGSTOP)  # does nothing once the process has ended
        if p.poll() is not None or written_bytes(out_dir) >= EARLY_BYTES:
            p.send_signal(signal.SIGCONT)
            p.communicate(timeout=60)
            self.skipTest("the conversion was nearly done before it could be stopped")
        return p

    def resume(self, p):
        p.send_signal(signal.SIGCONT)
        _, err = p.communicate(timeout=60)
        return p.returncode, err


class OutputFaults(FaultTest):
    def mount_tmpfs(self, options):
        if os.geteuid() != 0:
            self.skipTest("mounting a file system needs root")
        mnt = self.path("mnt")
        os.mkdir(mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", mnt]).returncode != 0:
            self.skipTest("cannot mount tmpfs here")
        self.addCleanup(subprocess.run, ["umount", mnt])
        return mnt

    def test_a_read_only_output_folder_fails_with_nothing_left(self):
        if os.geteuid() == 0:
            mnt = self.mount_tmpfs("ro,size=1m")
        else:
            mnt = self.path("ro")
            os.mkdir(mnt, 0o500)
        for output in ("m.ckpt", "hf/"):
            with self.subTest(output=output):
                self.run_and_check(["convert", "--rules", QWEN_RULES, "--input", QWEN, "--output",
                                    os.path.join(mnt, output)], 3, mnt, QWEN, "cannot create output")

    def test_a_full_file_system_fails_with_nothing_left(self):
        mnt = self.mount_tmpfs("size=16k")
        for output in ("m.ckpt", "hf/"):
            with self.subTest(output=output):
                self.run_and_check(["convert", "--rules", QWEN_RULES, "--input", QWEN, "--output",
                                    os.path.join(mnt, output)], 3, mnt, QWEN, "No space left on device")


class InputChanges(FaultTest):
    """Another process changes the input while it is read. Each change is found (by a short read
    or copy, or the identity check before the commit; a SIGBUS or EFAULT where a reader falls back
    to its mapping, see base.interrupt and base.output_file) and reported as
    "input changed while being read", exit status 3."""

    def setUp(self):
        super().setUp()
        self.input = self.path("big")
        self.weights = write_big_hf_folder(self.input)
        self.out = self.path("out")
        os.mkdir(self.out)

    def change_while_converting(self, change, *extra):
        p = self.start_stopped(["convert", "--rules", LLAMA_RULES, "--input", self.input, "--output",
                                os.path.join(self.out, "m.ckpt"), "--threads", "1", *extra], self.out)
        change()
        left = tree_hash(self.input)
        returncode, err = self.resume(p)
        self.assert_clean_failure(returncode, err, 3, self.out, self.input, left)
        self.assertRegex(err, "^convert_weight: " + re.escape(self.weights) +
                         r"(: byte \d+ \(0x[0-9a-f]+\))?: error: input changed while being read")
        return err

    def truncate(self):
        os.truncate(self.weights, 4096)

    # Depending on where the process stopped, the truncation is found by the identity check when
    # the executor opens its inputs ("its size went from ..."), or by the first read past the new
    # end ("it ends before this byte"): a pread for a cast, copy_file_range for a plain copy.
    def test_an_input_truncated_while_cast_fails_naming_it(self):
        self.change_while_converting(self.truncate, "--dtype", "bf16")

    def test_an_input_truncated_while_copied_fails_naming_it(self):
        self.change_while_converting(self.truncate)

    def test_an_input_rewritten_in_place_fails_naming_it(self):
        def rewrite():
            with open(self.weights, "r+b") as f:
                f.seek(os.path.getsize(self.weights) // 2)
                f.write(b"\x01" * 4096)
        err = self.change_while_converting(rewrite)
        self.assertIn("it was written to", err)

    def test_an_input_deleted_while_read_fails_naming_it(self):
        # The mapping still reads the deleted file's bytes, but the output would stand for a file
        # that no longer exists: refused.
        err = self.change_while_converting(lambda: os.remove(self.weights))
        self.assertIn("deleted or moved away", err)

    def test_an_input_replaced_while_read_fails_naming_it(self):
        def replace():
            other = self.path("other.safetensors")
            shutil.copyfile(os.path.join(QWEN, "model.safetensors"), other)
            os.rename(other, self.weights)
        err = self.change_while_converting(replace)
        self.assertIn("replaced by another file", err)


class Interrupts(FaultTest):
    """SIGINT and SIGTERM while each kind of output is being written: status 130 or 143, the
    temporary file or folder removed."""

    @classmethod
    def setUpClass(cls):
        cls.shared = tempfile.mkdtemp(prefix="cw-faults-")
        cls.addClassCleanup(shutil.rmtree, cls.shared)
        cls.hf = os.path.join(cls.shared, "hf")
        write_big_hf_folder(cls.hf)
        # The same model as a .ckpt, beside its config.json, for the reverse direction.
        cls.ckpt_dir = os.path.join(cls.shared, "ckpt")
        os.mkdir(cls.ckpt_dir)
        shutil.copy(os.path.join(cls.hf, "config.json"), cls.ckpt_dir)
        cls.ckpt = os.path.join(cls.ckpt_dir, "m.ckpt")
        run("convert", "--rules", LLAMA_RULES, "--input", cls.hf, "--output", cls.ckpt, "--quiet")

    def interrupt_each_way(self, input_path, output, *extra):
        out = self.path("out")
        os.mkdir(out)
        before = tree_hash(input_path)
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            with self.subTest(signal=sig.name):
                p = self.start_stopped(["convert", "--rules", LLAMA_RULES, "--input", input_path,
                                        "--output", os.path.join(out, output), "--threads", "1",
                                        *extra], out)
                p.send_signal(sig)
                returncode, err = self.resume(p)
                self.assert_clean_failure(returncode, err, code, out, input_path, before,
                                          "interrupted; no output was written")

    def test_interrupting_a_ckpt_output_leaves_nothing(self):
        self.interrupt_each_way(self.hf, "m.ckpt", "--dtype", "bf16")

    def test_interrupting_a_sharded_folder_output_leaves_nothing(self):
        self.interrupt_each_way(self.ckpt, "hf/", "--reverse", "--max-shard-size", "64MB")

    def test_interrupting_a_torch_bin_output_leaves_nothing(self):
        self.interrupt_each_way(self.ckpt, "m.bin", "--reverse")


if __name__ == "__main__":
    unittest.main(verbosity=2)
