"""Optional interop check with the newer clients Debian 12 lacks: torch 2.x, the official
safetensors library and transformers, taken from a Debian sid chroot
(tests/tools/make_extended_chroot.sh builds it; docs/interop.md).

Our binary is built for Debian 12 and cannot run in the chroot, so this script runs outside with
Debian 12's python: it runs convert_weight here, writing into a folder under the chroot's /tmp, and
runs tests/interop/extended/check_in_chroot.py inside (`chroot ROOT /usr/bin/python3 ...`):
  - `write`: torch 2.x, safetensors and transformers write fixtures plus a manifest (names, dtypes,
    shapes, sha256 of the raw bytes as those clients read them back); we rewrite each fixture to
    .safetensors here and compare byte for byte (checks 4*);
  - `verify`: those clients load what we wrote (.bin, .safetensors, sharded folders, HF folders),
    compared with expectations computed here from the sources (checks 1*, 2*, 3*), independently
    of our readers: repo safetensors files through cw_testlib's parser, torch files through
    Debian's torch 1.13, torch-2.x fixtures through their manifest.

The chroot plumbing (finding it, skipping, the work folder, running a script inside) is
chroot_lib.py's, shared with test_extended_families.py.

Environment: CW_BIN, CW_SOURCE_DIR (as for the other interop tests),
CW_EXTENDED_CHROOT (default ~/.cache/convert_weight/sid, as make_extended_chroot.sh), CW_EXTENDED_KEEP=1 to keep the work folder.
Without the chroot, its packages, or root (needed by chroot), prints "skipped: ..." and exits 77,
which CTest reports as skipped (SKIP_RETURN_CODE 77).
"""
import hashlib
import json
import os
import shutil
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from cw_testlib import (BIN, EXTERNAL, SOURCE, TORCH_TO_CODE, flatten, inspect,  # noqa: E402
                        read_safetensors, run, torch_bytes)
from chroot_lib import ROOT, describe_failure, open_work  # noqa: E402

SCRIPT = "check_in_chroot.py"
QWEN2 = os.path.join(SOURCE, "tests/data/qwen2_tiny")
DTYPES_VIEWS = os.path.join(EXTERNAL, "torch/dtypes_views.pt")

# Set by main() once the chroot answered the probe.
WORK = None     # chroot_lib.Work: the work folder under ROOT/tmp
VERSIONS = {}


def chroot_python(*args, timeout=1200):
    """Runs check_in_chroot.py inside the chroot with a clean, offline environment."""
    return WORK.python(SCRIPT, *args, timeout=timeout)


def inner(path):
    """A path under the work folder as seen inside the chroot."""
    return WORK.inside(path)


def entry(name, dtype, shape, data):
    return {"name": name, "dtype": dtype, "shape": list(shape), "nbytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def expect_from_safetensors(path):
    """Independent of our readers: cw_testlib's own safetensors parser."""
    tensors, _ = read_safetensors(path)
    return [entry(n, d, s, b) for n, (d, s, b) in tensors.items()]


def expect_from_torch13(path):
    """Independent of our readers: Debian's torch 1.13 loads the source."""
    try:
        import torch
    except ImportError as e:
        raise RuntimeError(f"{e}: run this script with Debian's /usr/bin/python3 and "
                           "python3-torch (tests/tools/install_deps.sh)") from e
    obj = torch.load(path, weights_only=True)
    return [entry(n, TORCH_TO_CODE[str(t.dtype)], t.shape, torch_bytes(t))
            for n, t in flatten(obj).items()]


class ExtendedClients(unittest.TestCase):
    """One pipeline (write in the chroot, rewrite here, verify in the chroot) run once; each test
    asserts its own part of the results."""

    @classmethod
    def setUpClass(cls):
        cls.written = os.path.join(WORK.path, "written")
        cls.ours = os.path.join(WORK.path, "ours")
        os.makedirs(cls.ours, exist_ok=True)
        cls.manifest, cls.write_error = None, None
        p = chroot_python("write", inner(cls.written))
        if p.returncode == 0:
            with open(os.path.join(cls.written, "manifest.json"), encoding="utf-8") as f:
                cls.manifest = json.load(f)
        else:
            cls.write_error = "check_in_chroot.py write failed: " + describe_failure(p)
        cls.cases, cls.prep_errors = [], {}
        cls.prepare_cases()
        with open(os.path.join(cls.ours, "verify.json"), "w", encoding="utf-8") as f:
            json.dump({"cases": cls.cases}, f, indent=1, ensure_ascii=False)
        p = chroot_python("verify", inner(cls.ours))
        cls.verify_error, cls.results = None, {}
        try:
            with open(os.path.join(cls.ours, "verify-result.json"), encoding="utf-8") as f:
                cls.results = json.load(f)["results"]
        except OSError:
            cls.verify_error = "check_in_chroot.py verify wrote no result: " + describe_failure(p)

    # -- building the cases the chroot verifies ----------------------------------------------

    @classmethod
    def fixture(cls, name):
        if cls.manifest is None:
            raise RuntimeError(cls.write_error)
        return cls.manifest["fixtures"][name]

    @classmethod
    def add_case(cls, case_id, kind, source, out, expect, rewrite_args=(), config=None,
                 path=None, **extra):
        """Rewrites SOURCE to ours/OUT with our binary and queues a verify case loading ours/PATH
        (default OUT), with CONFIG copied in as config.json; a failure here (our rewrite refusing,
        a missing fixture) is recorded against the case."""
        path = path or out.rstrip("/")
        try:
            expected = expect()
            dest = os.path.join(cls.ours, out)
            os.makedirs(os.path.dirname(dest.rstrip("/")), exist_ok=True)
            run("rewrite", source, dest, *rewrite_args)
            if config:
                shutil.copy(config, os.path.join(cls.ours, path, "config.json"))
            cls.cases.append({"id": case_id, "kind": kind, "path": path, "expect": expected,
                              **extra})
        except Exception as e:  # noqa: BLE001 - reported by the case's test
            cls.prep_errors[case_id] = f"{type(e).__name__}: {e}"

    @classmethod
    def prepare_cases(cls):
        qwen_st = os.path.join(QWEN2, "model.safetensors")
        qwen = lambda: expect_from_safetensors(qwen_st)  # noqa: E731
        views = lambda: expect_from_torch13(DTYPES_VIEWS)  # noqa: E731
        fx = lambda name: (lambda: cls.fixture(name)["tensors"])  # noqa: E731
        w = lambda name: os.path.join(cls.written, name)  # noqa: E731
        qwen_config = os.path.join(QWEN2, "config.json")

        # 1. torch 2.x loads our .bin files.
        cls.add_case("bin.qwen2_tiny", "torch", QWEN2, "qwen2_tiny.bin", qwen, ordered=False)
        cls.add_case("bin.dtypes_views", "torch", DTYPES_VIEWS, "dtypes_views.bin", views)
        cls.add_case("bin.root_key", "torch", QWEN2, "qwen2_tiny_root.pth", qwen,
                     ["--root-key", "model"], root_key="model", ordered=False)
        cls.add_case("bin.torch2_roundtrip", "torch", w("torch2_bin_dtypes.pt"),
                     "torch2_roundtrip.bin", fx("torch2_bin_dtypes.pt"))
        # 2. The official safetensors library loads our .safetensors files and folders.
        cls.add_case("st.qwen2_tiny", "safetensors_file", QWEN2, "qwen2_tiny.safetensors", qwen)
        cls.add_case("st.dtypes_views", "safetensors_file", DTYPES_VIEWS,
                     "dtypes_views.safetensors", views)
        cls.add_case("st.torch2_all_dtypes", "safetensors_file", w("torch2_all_dtypes.pt"),
                     "torch2_all_dtypes.safetensors", fx("torch2_all_dtypes.pt"))
        cls.add_case("st.official_roundtrip", "safetensors_file", w("st_official.safetensors"),
                     "official_again.safetensors", fx("st_official.safetensors"))
        cls.add_case("st.sharded_qwen2_tiny", "safetensors_folder", QWEN2, "qwen2_sharded/",
                     qwen, ["--max-shard-size", "4KB"])
        cls.add_case("st.sharded_all_dtypes", "safetensors_folder", w("torch2_all_dtypes.pt"),
                     "all_dtypes_sharded/", fx("torch2_all_dtypes.pt"),
                     ["--max-shard-size", "200B"])
        # 3. transformers loads our HF folders.
        cls.add_case("hf.qwen2_tiny_single", "transformers", QWEN2, "hf_qwen2/", qwen,
                     config=qwen_config)
        cls.add_case("hf.qwen2_tiny_sharded", "transformers", QWEN2, "hf_qwen2_sharded/", qwen,
                     ["--max-shard-size", "4KB"], config=qwen_config)
        cls.add_case("hf.qwen2_tiny_bin", "transformers", QWEN2, "hf_qwen2_bin/pytorch_model.bin",
                     qwen, config=qwen_config, path="hf_qwen2_bin")
        cls.add_case("hf.transformers_sharded_roundtrip", "transformers", w("hf_sharded"),
                     "hf_sharded_again/", fx("hf_sharded"), ["--max-shard-size", "16KB"],
                     config=w("hf_sharded/config.json"))
        cls.add_case("hf.transformers_bin_tied_roundtrip", "transformers", w("hf_bin"),
                     "hf_bin_again/", fx("hf_bin"), config=w("hf_bin/config.json"))
        # Control: a copy of a good output with one data byte flipped must be caught.
        try:
            good = os.path.join(cls.ours, "qwen2_tiny.safetensors")
            bad = os.path.join(cls.ours, "control_corrupted.safetensors")
            with open(good, "rb") as f:
                data = bytearray(f.read())
            data[-1] ^= 0x01
            with open(bad, "wb") as f:
                f.write(data)
            cls.cases.append({"id": "control.corrupted", "kind": "safetensors_file",
                              "path": "control_corrupted.safetensors", "expect": qwen()})
        except OSError as e:
            cls.prep_errors["control.corrupted"] = str(e)

    # -- helpers -------------------------------------------------------------------------------

    def assert_case(self, case_id):
        if case_id in self.prep_errors:
            self.fail(f"{case_id}: not prepared: {self.prep_errors[case_id]}")
        if self.verify_error:
            self.fail(self.verify_error)
        r = self.results.get(case_id)
        self.assertIsNotNone(r, f"{case_id}: no verify result")
        self.assertTrue(r["ok"], f"{case_id}: " + "\n".join(r["errors"]))
        return r

    def assert_we_read(self, fixture, check_order=False, skipped=()):
        """convert_weight rewrites a file written by a newer client to .safetensors; every tensor
        has the dtype, shape and bytes that client reported."""
        m = self.fixture(fixture)
        src = os.path.join(self.written, fixture)
        out = os.path.join(WORK.path, "read", fixture + ".safetensors")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        run("rewrite", src, out, "--force")
        got, _ = read_safetensors(out)
        want = {e["name"]: e for e in m["tensors"]}
        self.assertEqual(sorted(got), sorted(want), fixture)
        for name, (dtype, shape, data) in got.items():
            self.assertEqual(entry(name, dtype, shape, data), want[name], f"{fixture}: {name}")
        listed = inspect(src)
        if check_order:
            self.assertEqual([t["name"] for t in listed["tensors"]], [e["name"] for e in m["tensors"]])
        names = {s["name"] for s in listed["skipped"]}
        for s in skipped:
            self.assertIn(s, names)
        return listed

    # -- 1. torch 2.x loads our .bin files -----------------------------------------------------

    def test_1a_torch2_loads_our_bin_of_the_qwen2_sample(self):
        self.assertEqual(self.assert_case("bin.qwen2_tiny")["info"]["modes"],
                         ["default", "weights_only", "mmap", "full_unpickler"])

    def test_1b_torch2_loads_our_bin_of_the_torch13_dtypes_and_views_file(self):
        self.assert_case("bin.dtypes_views")

    def test_1c_torch2_loads_our_bin_nested_under_a_root_key(self):
        self.assert_case("bin.root_key")

    def test_1d_torch2_file_through_our_bin_loads_back_in_torch2(self):
        self.assert_case("bin.torch2_roundtrip")

    # -- 2. the official safetensors library loads our outputs ---------------------------------

    def test_2a_safetensors_loads_our_single_file_of_the_qwen2_sample(self):
        self.assertEqual(self.assert_case("st.qwen2_tiny")["info"]["metadata"], {"format": "pt"})

    def test_2b_safetensors_loads_our_file_of_the_torch13_dtypes_and_views(self):
        self.assert_case("st.dtypes_views")

    def test_2c_safetensors_loads_our_file_of_torch2_uint_and_float8_tensors(self):
        self.assert_case("st.torch2_all_dtypes")

    def test_2d_safetensors_file_through_us_loads_back_in_safetensors(self):
        self.assert_case("st.official_roundtrip")

    def test_2e_safetensors_loads_our_sharded_folder(self):
        self.assertGreater(self.assert_case("st.sharded_qwen2_tiny")["info"]["shards"], 1)

    def test_2f_safetensors_loads_our_sharded_folder_of_every_dtype(self):
        self.assertGreater(self.assert_case("st.sharded_all_dtypes")["info"]["shards"], 1)

    def test_2g_control_a_flipped_byte_is_caught_by_the_comparison(self):
        r = self.results.get("control.corrupted")
        self.assertIsNotNone(r, self.verify_error or self.prep_errors.get("control.corrupted"))
        self.assertFalse(r["ok"], "the verifier did not notice a flipped byte")
        self.assertTrue(any("sha256" in e for e in r["errors"]), r["errors"])

    # -- 3. transformers loads our HF folders --------------------------------------------------

    def test_3a_transformers_loads_our_single_file_folder(self):
        info = self.assert_case("hf.qwen2_tiny_single")["info"]
        self.assertIn("model.safetensors", info["files"])
        self.assertNotIn("model.safetensors.index.json", info["files"])

    def test_3b_transformers_loads_our_sharded_folder_through_the_index(self):
        info = self.assert_case("hf.qwen2_tiny_sharded")["info"]
        self.assertIn("model.safetensors.index.json", info["files"])

    def test_3c_transformers_loads_our_pytorch_model_bin(self):
        self.assertIn("pytorch_model.bin", self.assert_case("hf.qwen2_tiny_bin")["info"]["files"])

    def test_3d_transformers_sharded_save_through_us_loads_back(self):
        self.assert_case("hf.transformers_sharded_roundtrip")

    def test_3e_transformers_tied_bin_through_us_loads_back(self):
        self.assert_case("hf.transformers_bin_tied_roundtrip")

    # -- 4. we read what the newer clients write -----------------------------------------------

    def test_4a_we_read_torch2_save_of_every_dtype_with_views(self):
        self.assert_we_read("torch2_all_dtypes.pt", check_order=True)
        self.assert_we_read("torch2_bin_dtypes.pt", check_order=True)

    def test_4b_we_read_torch2_save_with_pickle_protocol_4(self):
        self.assert_we_read("torch2_protocol4.pt", check_order=True)

    def test_4c_we_read_torch2_legacy_non_zip_format(self):
        self.assert_we_read("torch2_legacy_format.pt", check_order=True)

    def test_4d_we_read_a_torch2_training_checkpoint_with_optimizer_state(self):
        self.assert_we_read("torch2_nested.pth", check_order=True, skipped=["epoch"])

    def test_4e_we_read_safetensors_save_file(self):
        self.assert_we_read("st_official.safetensors")

    def test_4f_we_read_transformers_sharded_save_pretrained(self):
        self.assert_we_read("hf_sharded")

    def test_4g_we_read_transformers_single_file_save_pretrained(self):
        self.assert_we_read("hf_single")

    def test_4h_we_read_a_transformers_style_pytorch_model_bin_with_tied_weights(self):
        listed = self.assert_we_read("hf_bin", check_order=True)
        self.assertIn("lm_head.weight", [t["name"] for t in listed["tensors"]])

    def test_4i_torch2_only_dtypes_are_refused_for_bin_not_mangled(self):
        out = os.path.join(WORK.path, "read", "refused.bin")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        p = run("rewrite", os.path.join(self.written, "torch2_all_dtypes.pt"), out, check=False)
        # docs/errors.md: unsupported (exit 1), one line naming the tensor and its dtype.
        self.assertEqual(p.returncode, 1, f"U16/U32/U64/F8 written to a .bin? {p.stderr}")
        self.assertIn('"u16"', p.stderr)
        self.assertIn("U16", p.stderr)
        self.assertFalse(os.path.exists(out))


def main():
    global WORK, VERSIONS
    WORK, VERSIONS = open_work("cw-ext-", [SCRIPT], BIN)
    try:
        print("extended clients in {}: python {python}, torch {torch}, safetensors {safetensors}, "
              "transformers {transformers}, numpy {numpy}".format(ROOT, **VERSIONS), flush=True)
        prog = unittest.main(argv=[sys.argv[0]], verbosity=2, exit=False)
        return 0 if prog.result.wasSuccessful() else 1
    finally:
        WORK.remove()


if __name__ == "__main__":
    sys.exit(main())
