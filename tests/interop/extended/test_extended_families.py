"""Optional check of six rule files on tiny REAL transformers models: Qwen3ForCausalLM,
Qwen3MoeForCausalLM, Qwen2MoeForCausalLM, DeepseekV3ForCausalLM, Glm4ForCausalLM and
Glm4MoeForCausalLM, built and saved by transformers 5.x in the Debian sid chroot
(tests/tools/make_extended_chroot.sh; docs/interop.md). The default suite's
tests/e2e/test_family_{qwen3,qwen3_moe,qwen2_moe,deepseek3,glm4,glm4_moe}.py check the same
rules on synthetic checkpoints written by hand; this test checks that those checkpoints are what
transformers really writes, and that the conversions hold on what it writes.

Runs outside with Debian 12's python and our binary; families_in_chroot.py runs inside
(`chroot ROOT /usr/bin/python3`, chroot_lib.py):
  1. `build`: each model is built from the family test's own config (the sizes that exercise the
     layouts: GQA with several query heads per KV group, head_dim != hidden_size / heads where
     the family has head_dim, several experts (11 for Qwen3-MoE: two-digit indices), shared
     experts, dense and MoE layers, DeepSeek's q_lora_rank, dense first layer and
     e_score_correction_bias), with transformers' own class, bf16, a fixed seed; every tensor
     transformers initialises to a constant gets seeded noise; save_pretrained writes sharded
     safetensors; the logits of a fixed input_ids batch and the in-memory tensors
     save_pretrained splits are recorded.
  2. Here: the saved names, dtypes and shapes equal the family test's synthetic checkpoint for
     the same config (its MTP layer left out: transformers builds none); `convert --rules` to a
     .ckpt gives the names of the family's expected table (tests/e2e/expected/, written from
     MindFormers' tables) and every tensor equals the family test's independent torch
     computation (fused q/k/v, gate/up, stacked experts) for every layout the rule file offers;
     the MCore families' default folder output holds the same tensors; the stacked experts also
     equal transformers' own in-memory fused tensors, permuted and flattened here.
  3. Here: the reverse (from the .ckpt, and from the folder output) gives back every saved tensor
     byte for byte, read by cw_testlib's own safetensors parser.
  4. `logits`: transformers loads each reversed folder (with the config.json our reverse
     writes from --config) with from_pretrained (no missing, unexpected or mismatched keys); its
     state dict equals the one loaded from the saved folder and its logits equal the recorded
     ones exactly (torch.equal). Controls: the saved folder itself reloads to the recorded
     logits; a reversed folder with one weight's exponent flipped does not.

What transformers 5 writes (found with 5.12.1): in memory it keeps MoE experts fused,
mlp.experts.gate_up_proj [E, 2F, H] (each expert's [gate; up]) and mlp.experts.down_proj
[E, H, F]; save_pretrained (save_original_format=True, the default) reverts its conversion
mapping and writes the hub's per-expert names, mlp.experts.{e}.gate_proj / up_proj /
down_proj.weight, which is what the rule files read. The test checks this rather than assuming
it: a transformers writing the fused names fails step 1 naming them. Its Qwen3MoeConfig stores
num_experts as num_local_experts, the only expert count in the config.json it writes
(qwen3_moe.yaml reads both). DeepseekV3 and Glm4Moe build no MTP layer, so none is saved, but
config.json keeps num_nextn_predict_layers: 1: glm4_moe.yaml drops MTP layers in any case;
deepseek3.yaml counts the MTP layer from the names, not from config.json, so such a folder
converts both ways as it is (the default suite's test_family_deepseek3 pins this down too). DeepseekV3's router bias buffer is created in the default dtype, so a model built
from a config (not loaded) holds it in bf16 and saves it so, while from_pretrained keeps it
float32 (_keep_in_fp32_modules_strict), as the releases store it: the DeepSeek-V3 model here gets
float32 as from_pretrained would, and a second one (deepseek3_bias_bf16) keeps transformers' bf16
to show what the rule file's float32 expert_bias does with it (forward: an exact widening;
reverse: float32, the same values, the same logits; the only tensor that does not come back byte
for byte).

Environment: CW_BIN, CW_SOURCE_DIR, CW_PROTOC (as for the other interop tests), CW_EXTENDED_CHROOT,
CW_EXTENDED_KEEP=1 (as test_extended_clients.py). Without the chroot, its packages, or root,
prints "skipped: ..." and exits 77 (CTest: skipped).
"""
import json
import os
import re
import shutil
import sys
import unittest
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(os.path.dirname(os.path.dirname(HERE)), "e2e")
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, E2E)
from chroot_lib import ROOT, describe_failure, open_work  # noqa: E402
from cw_testlib import BIN, SOURCE, read_safetensors  # noqa: E402

import torch  # noqa: E402  (Debian's torch 1.13, as for the family tests)

from family_lib import expected_names, from_record, read_ckpt, read_hf_folder, record  # noqa: E402
from family_lib import convert as cw_convert  # noqa: E402
import test_family_deepseek3 as ds3  # noqa: E402
import test_family_glm4 as glm4  # noqa: E402
import test_family_glm4_moe as glm4_moe  # noqa: E402
import test_family_qwen2_moe as qwen2_moe  # noqa: E402
import test_family_qwen3 as qwen3  # noqa: E402
import test_family_qwen3_moe as qwen3_moe  # noqa: E402
from test_mindformers_folder import read_ms_folder  # noqa: E402

SCRIPT = "families_in_chroot.py"
LAYOUTS = [("interleaved", "interleaved"), ("contiguous", "contiguous"),
           ("interleaved", "contiguous"), ("contiguous", "interleaved")]

# Set by main() once the chroot answered the probe.
WORK = None
VERSIONS = {}


def for_transformers(config):
    """A family test's config.json dict as keyword arguments of the transformers config class."""
    return {k: v for k, v in config.items()
            if k not in ("architectures", "model_type", "torch_dtype", "transformers_version")}


def without_mtp(config):
    return dict(config, num_nextn_predict_layers=0)


CONTROL = "control.corrupted"


class Variant:
    """One conversion of a family: its extra convert arguments (both ways), its expected MindSpore
    records (a function of the saved tensors) and the keyword arguments of the family's experts
    function."""

    def __init__(self, label, args, expected, **experts_kwargs):
        self.label, self.args, self.expected, self.experts_kwargs = (label, list(args), expected,
                                                                     experts_kwargs)


def layout_variants(expected_fn, config):
    """Every qkv_layout x fc1_layout of an MCore rule file, the default first."""
    return [Variant(f"qkv_layout={q},fc1_layout={f}", qwen3.layout_args(q, f),
                    lambda t, q=q, f=f: expected_fn(t, config, q, f)) for q, f in LAYOUTS]


def mcore_experts(memory, **_):
    """weight1 / weight2 from transformers' fused in-memory experts, computed here: gate_up_proj
    [E, 2F, H] -> [E, H, 2F] -> [E * H, 2F]; down_proj [E, H, F] -> [E, F, H] -> [E * F, H]."""
    out = {}
    for name, gate_up in memory.items():
        m = re.fullmatch(r"model\.layers\.(\d+)\.mlp\.experts\.gate_up_proj", name)
        if m:
            down = memory[f"model.layers.{m.group(1)}.mlp.experts.down_proj"]
            e, f2, h = gate_up.shape
            dst = f"decoder.layers.{m.group(1)}.mlp.experts."
            out[dst + "weight1"] = gate_up.permute(0, 2, 1).reshape(e * h, f2)
            out[dst + "weight2"] = down.permute(0, 2, 1).reshape(e * (f2 // 2), h)
    return out


def legacy_experts(memory, use_gmm=True, **_):
    """qwen2_moe's routed_experts.ffn.w1 / w3 / w2 from the fused in-memory experts: the gate and
    up halves of gate_up_proj ([E, F, H] each) and down_proj [E, H, F], axes 1 and 2 swapped
    under use_gmm."""
    out = {}
    for name, gate_up in memory.items():
        m = re.fullmatch(r"model\.layers\.(\d+)\.mlp\.experts\.gate_up_proj", name)
        if m:
            f = gate_up.shape[1] // 2
            down = memory[f"model.layers.{m.group(1)}.mlp.experts.down_proj"]
            dst = f"model.layers.{m.group(1)}.feed_forward.routed_experts.ffn."
            for w, t in (("w1", gate_up[:, :f]), ("w3", gate_up[:, f:]), ("w2", down)):
                out[f"{dst}{w}.weight"] = t.permute(0, 2, 1) if use_gmm else t
    return out


def widened(records, suffix):
    """Records with every tensor named ...suffix widened to float32."""
    return {n: record(from_record(r).float()) if n.endswith(suffix) else r
            for n, r in records.items()}


def contiguous_glm4_moe(t, config):
    """glm4_moe_expected with qkv_layout and fc1_layout contiguous: the family test computes the
    interleaved layouts only, so linear_qkv and linear_fc1 are recomputed with its helpers."""
    out = glm4_moe.glm4_moe_expected(t, config)
    sizes = (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"])
    for layer in range(config["num_hidden_layers"]):
        src, dst = f"model.layers.{layer}.", f"decoder.layers.{layer}."
        for wb in ("weight", "bias"):
            out[f"{dst}self_attention.linear_qkv.{wb}"] = record(qwen3.QKV["contiguous"](
                *[t[f"{src}self_attn.{p}_proj.{wb}"] for p in "qkv"], *sizes))
        mlp = "mlp." if layer < config["first_k_dense_replace"] else "mlp.shared_experts."
        out[f"{dst}{mlp}linear_fc1.weight"] = record(qwen3.FC1["contiguous"](
            t[f"{src}{mlp}gate_proj.weight"], t[f"{src}{mlp}up_proj.weight"]))
    return out


class Family:
    """One tiny model: transformers' class, the rule file, the family test's config, its
    synthetic tensors for that config (None: not compared), the expected name table, the
    conversion variants (the default first), how the stacked experts follow from transformers'
    fused ones, and what the reverse must give back (default: the saved tensors)."""

    def __init__(self, key, cls, rules, config, synthetic, table, variants, seed, experts=None,
                 mcore=True, keep_in_fp32=True, back=lambda saved: saved):
        self.key, self.cls, self.rules, self.config = key, cls, rules, config
        self.synthetic, self.table, self.variants, self.seed = synthetic, table, variants, seed
        self.experts, self.mcore, self.keep_in_fp32, self.back = experts, mcore, keep_in_fp32, back

    def chroot_spec(self):
        return {"class": self.cls, "config": for_transformers(self.config), "seed": self.seed,
                "keep_in_fp32": self.keep_in_fp32}


def families():
    rules = lambda name: os.path.join(SOURCE, "rules", name + ".yaml")  # noqa: E731
    out = []
    # Qwen3: 6 heads / 2 KV heads of 8 on a hidden size of 32 (48 != 32), untied.
    c = qwen3.qwen3_config()
    out.append(Family("qwen3", "Qwen3ForCausalLM", rules("qwen3"), c,
                      lambda c=c: qwen3.qwen3_tensors(c), "qwen3",
                      layout_variants(qwen3.qwen3_expected, c), seed=10))
    # Qwen3-MoE: 11 experts of 8 (grouped_mm, transformers 5's default expert kernel, needs rows
    # of a multiple of 16 bytes: F a multiple of 8 in bf16), 4 layers with decoder_sparse_step 2
    # and mlp_only_layers [3]: layer 1 MoE, layers 0, 2 and 3 dense.
    c = qwen3_moe.qwen3_moe_config(num_experts=11, moe_intermediate_size=8, num_hidden_layers=4,
                                   decoder_sparse_step=2, mlp_only_layers=[3])
    out.append(Family("qwen3_moe", "Qwen3MoeForCausalLM", rules("qwen3_moe"), c,
                      lambda c=c: qwen3_moe.qwen3_moe_tensors(c), "qwen3_moe_dense",
                      layout_variants(qwen3_moe.qwen3_moe_expected, c), seed=20,
                      experts=mcore_experts))
    # Qwen2-MoE: 8 heads / 2 KV heads, q/k/v biases, 4 experts of 8, a shared expert of 48 with
    # its gate, 3 layers with mlp_only_layers [0, 2]; every qkv_concat x use_gmm.
    c = qwen2_moe.qwen2_moe_config(moe_intermediate_size=8, num_hidden_layers=3,
                                   mlp_only_layers=[0, 2])
    variants = [Variant(f"qkv_concat={q},use_gmm={g}", qwen2_moe.variant_args(q, g),
                        lambda t, q=q, g=g, c=c: qwen2_moe.qwen2_moe_expected(t, c, q, g),
                        use_gmm=g)
                for q, g in ((True, True), (False, False), (True, False), (False, True))]
    out.append(Family("qwen2_moe", "Qwen2MoeForCausalLM", rules("qwen2_moe"), c,
                      lambda c=c: qwen2_moe.qwen2_moe_tensors(c), "qwen2_moe_dense", variants,
                      seed=30, experts=legacy_experts, mcore=False))
    # DeepSeek-V3: MLA with q_lora_rank, 3 layers (layer 0 dense), 4 experts of 8 plus 2 shared
    # experts (16 rows fused), the float32 router bias; num_nextn_predict_layers 1 in config.json
    # as in the releases, but no MTP layer (transformers builds none); deepseek3.yaml counts
    # nextn from the names, so nothing needs saying.
    c = ds3.ds3_config(moe_intermediate_size=8, n_shared_experts=2)
    ds3_expected = lambda t, c=c: ds3.ds3_expected(t, without_mtp(c))  # noqa: E731
    out.append(Family("deepseek3", "DeepseekV3ForCausalLM", rules("deepseek3"), c,
                      lambda c=c: ds3.ds3_tensors(without_mtp(c)), "deepseek3_nomtp",
                      [Variant("default", [], ds3_expected)], seed=40, experts=mcore_experts))
    # The same model with the router bias as transformers holds it in a model built from a
    # config: bf16. The rule file writes expert_bias float32 both ways: forward widens it
    # (exactly), the reverse gives it back float32 with the same values.
    bias = "mlp.gate.e_score_correction_bias"
    out.append(Family("deepseek3_bias_bf16", "DeepseekV3ForCausalLM", rules("deepseek3"), c,
                      None, "deepseek3_nomtp",
                      [Variant("default", [], lambda t: widened(ds3_expected(t), "expert_bias"))],
                      seed=40, experts=mcore_experts, keep_in_fp32=False,
                      back=lambda saved: widened(saved, bias)))
    # GLM-4-0414: 8 heads / 2 KV heads of 8 on 32 (64 != 32), q/k/v biases, the fused
    # gate_up_proj, the sandwich norms.
    c = glm4.glm4_config(head_dim=8)
    out.append(Family("glm4", "Glm4ForCausalLM", rules("glm4"), c,
                      lambda c=c: glm4.glm4_tensors(c), "glm4",
                      layout_variants(glm4.glm4_expected, c), seed=50))
    # GLM-4.5: 6 heads / 2 KV heads of 8 on 32, q/k/v biases and q/k norms, layer 0 dense, 4
    # experts of 8 plus a shared one, the float32 router bias; num_nextn_predict_layers 1 in
    # config.json, no MTP layer.
    c = glm4_moe.glm4_moe_config(moe_intermediate_size=8)
    out.append(Family("glm4_moe", "Glm4MoeForCausalLM", rules("glm4_moe"), c,
                      lambda c=c: glm4_moe.glm4_moe_tensors(without_mtp(c)), "glm4_moe",
                      [Variant("default", [], lambda t, c=c: glm4_moe.glm4_moe_expected(t, c)),
                       Variant("qkv_layout=contiguous,fc1_layout=contiguous",
                               qwen3.layout_args("contiguous", "contiguous"),
                               lambda t, c=c: contiguous_glm4_moe(t, c))],
                      seed=60, experts=mcore_experts))
    return OrderedDict((f.key, f) for f in out)


FAMILIES = families()


def shape_table(records):
    return {n: (r[0], r[1]) for n, r in records.items()}


class ExtendedFamilies(unittest.TestCase):
    """The chroot builds every model once and loads every reversed folder once; the conversions
    run here in between. Each test asserts one step for one family."""

    @classmethod
    def setUpClass(cls):
        cls.build, cls.build_error = {}, None
        with open(os.path.join(WORK.path, "families.json"), "w", encoding="utf-8") as f:
            json.dump({k: fam.chroot_spec() for k, fam in FAMILIES.items()}, f, indent=1)
        p = WORK.python(SCRIPT, "build", WORK.inner)
        try:
            with open(os.path.join(WORK.path, "build.json"), encoding="utf-8") as f:
                cls.build = json.load(f)["families"]
        except OSError:
            cls.build_error = "families_in_chroot.py build failed: " + describe_failure(p)
        cls.done, cls.errors, cls.cases = {}, {}, []
        for key, fam in FAMILIES.items():
            if key in cls.build:
                try:
                    cls.done[key] = cls.convert(fam)
                except Exception as e:  # noqa: BLE001 - reported by the family's tests
                    cls.errors[key] = f"{type(e).__name__}: {e}"
        cls.add_control()
        with open(os.path.join(WORK.path, "logits.json"), "w", encoding="utf-8") as f:
            json.dump({"cases": cls.cases}, f, indent=1)
        cls.logits, cls.logits_error = {}, None
        if cls.cases:
            p = WORK.python(SCRIPT, "logits", WORK.inner)
            try:
                with open(os.path.join(WORK.path, "logits-result.json"), encoding="utf-8") as f:
                    cls.logits = json.load(f)["results"]
            except OSError:
                cls.logits_error = "families_in_chroot.py logits wrote no result: " + \
                    describe_failure(p)
        for key in FAMILIES:
            if key in cls.build:
                print(cls.summary(key), flush=True)

    @classmethod
    def convert(cls, fam):
        """Every conversion of one family, forward and back, recorded for the tests."""
        base = os.path.join(WORK.path, fam.key)
        saved = os.path.join(base, "saved")
        config = os.path.join(saved, "config.json")
        out = {"saved": read_hf_folder(saved), "variants": []}
        out["tensors"] = {n: from_record(r) for n, r in out["saved"].items()}
        memory, _ = read_safetensors(os.path.join(base, "memory.safetensors"))
        out["memory"] = {n: from_record(r) for n, r in memory.items()}
        for i, v in enumerate(fam.variants):
            ckpt = os.path.join(base, f"variant{i}.ckpt")
            back = os.path.join(base, f"variant{i}_back")
            cw_convert(fam.rules, saved, ckpt, *v.args)
            cw_convert(fam.rules, ckpt, back + "/", "--config", config, *v.args,
                       reverse=True)
            out["variants"].append({"ckpt": read_ckpt(ckpt), "back": read_hf_folder(back)})
            if i == 0:
                cls.add_logits_case(fam, f"{fam.key}.ckpt_back", back, saved)
        if fam.mcore:
            folder, back = os.path.join(base, "ms_folder"), os.path.join(base, "ms_folder_back")
            cw_convert(fam.rules, saved, folder + "/")
            cw_convert(fam.rules, folder, back + "/", "--config", config, reverse=True)
            out["folder"] = read_ms_folder(folder)[0]
            out["folder_back"] = read_hf_folder(back)
            cls.add_logits_case(fam, f"{fam.key}.folder_back", back, saved)
        return out

    @classmethod
    def add_logits_case(cls, fam, case_id, folder, saved):
        """Queues FOLDER for from_pretrained; our reverse writes weights only unless --config
        makes it write config.json, so the saved config.json is copied in when it is missing."""
        out = {"id": case_id, "family": fam.key, "path": os.path.relpath(folder, WORK.path)}
        if not os.path.exists(os.path.join(folder, "config.json")):
            shutil.copy(os.path.join(saved, "config.json"), folder)
            out["config_copied"] = True
        cls.cases.append(out)

    @classmethod
    def add_control(cls):
        """A copy of qwen3's reversed folder with the exponent of one weight flipped: the logits
        comparison must catch it."""
        good = os.path.join(WORK.path, "qwen3", "variant0_back")
        if "qwen3" not in cls.done or not os.path.isdir(good):
            return
        bad = os.path.join(WORK.path, "control_corrupted")
        shutil.copytree(good, bad)
        with open(os.path.join(bad, "model.safetensors"), "r+b") as f:
            f.seek(-1, os.SEEK_END)  # the high byte of the last bf16 value: sign and exponent
            byte = f.read(1)[0]
            f.seek(-1, os.SEEK_END)
            f.write(bytes([byte ^ 0x40]))
        cls.cases.append({"id": CONTROL, "family": "qwen3", "path": "control_corrupted"})

    @classmethod
    def summary(cls, key):
        """One line: what transformers built and what save_pretrained wrote of it."""
        b = cls.build[key]
        shards = [f for f in b["files"] if f.endswith(".safetensors")]
        line = f"{key}: {b['class']}, {len(b['saved'])} tensors in {len(shards)} shards"
        layer = lambda name: re.sub(r"^model\.layers\.\d+\.", "", name)  # noqa: E731
        fused = sorted({f"{layer(e['name'])} {e['shape'][0]}x{e['shape'][1]}x{e['shape'][2]}"
                        for e in b["memory"] if e["name"] in b["memory_only"]})
        split = sorted({re.sub(r"experts\.\d+\.", "experts.{e}.", layer(e["name"]))
                        for e in b["saved"] if re.search(r"experts\.\d+\.", e["name"])})
        if fused:
            line += f"; in memory {', '.join(fused)}; saved as {', '.join(split)}"
        return line

    # -- helpers -------------------------------------------------------------------------------

    def family(self, key):
        if self.build_error:
            self.fail(self.build_error)
        self.assertIn(key, self.build, f"{key}: not built")
        if key in self.errors:
            self.fail(f"{key}: conversion failed: {self.errors[key]}")
        return FAMILIES[key], self.build[key], self.done[key]

    # -- the checks, one method per family and step (added below) ------------------------------

    def check_saved(self, key):
        """transformers built the model and saved it sharded, with the hub's names: those of the
        family test's synthetic checkpoint, with its dtypes and shapes."""
        fam, b, done = self.family(key)
        self.assertEqual(b["class"], fam.cls)
        self.assertEqual(b["control_errors"], [], "the saved folder does not reload to the "
                         "recorded logits: the logits comparison would mean nothing")
        self.assertTrue(b["logits_finite"])
        self.assertIn("model.safetensors.index.json", b["files"])
        self.assertGreater(len([f for f in b["files"] if f.endswith(".safetensors")]), 1)
        self.assertEqual(b["constant"], [], "tensors left constant")
        self.assertEqual(sorted(e["name"] for e in b["saved"]), sorted(done["saved"]))
        if fam.synthetic:
            want = {n: record(t) for n, t in fam.synthetic().items()}
            self.assertEqual(shape_table(done["saved"]), shape_table(want))
        # What save_pretrained splits: only the fused experts, into the per-expert hub names.
        fused = [n for n in b["memory_only"]]
        self.assertEqual(bool(fused), fam.experts is not None, fused)
        for name in fused:
            self.assertRegex(name, r"^model\.layers\.\d+\.mlp\.experts\.(gate_up_proj|down_proj)$")
        t = done["tensors"]
        for name in fused:
            if not name.endswith("gate_up_proj"):
                continue
            p = name[:-len("gate_up_proj")]
            gate_up, down = done["memory"][name], done["memory"][p + "down_proj"]
            f = gate_up.shape[1] // 2
            for e in range(gate_up.shape[0]):
                self.assertTrue(torch.equal(t[f"{p}{e}.gate_proj.weight"], gate_up[e, :f]), p)
                self.assertTrue(torch.equal(t[f"{p}{e}.up_proj.weight"], gate_up[e, f:]), p)
                self.assertTrue(torch.equal(t[f"{p}{e}.down_proj.weight"], down[e]), p)

    def check_forward(self, key):
        """Names of the expected table; every tensor equal to the family test's independent torch
        computation from the saved tensors, for every variant."""
        fam, _, done = self.family(key)
        got = done["variants"][0]["ckpt"]
        self.assertEqual(sorted(got), sorted(expected_names(fam.table)))
        for v, result in zip(fam.variants, done["variants"]):
            with self.subTest(variant=v.label):
                want = v.expected(done["tensors"])
                self.assertEqual(sorted(result["ckpt"]), sorted(want))
                for name in want:
                    self.assertEqual(result["ckpt"][name], want[name], name)

    def check_experts(self, key):
        """The stacked experts equal transformers' own fused in-memory tensors, laid out here."""
        fam, _, done = self.family(key)
        for v, result in zip(fam.variants, done["variants"]):
            with self.subTest(variant=v.label):
                want = fam.experts(done["memory"], **v.experts_kwargs)
                self.assertTrue(want)
                for name, t in want.items():
                    self.assertEqual(result["ckpt"][name], record(t.contiguous()), name)

    def check_folder(self, key):
        """The default folder output (MindSpore safetensors) holds the .ckpt's tensors, and
        reverses to the saved tensors."""
        fam, _, done = self.family(key)
        self.assertEqual(done["folder"], done["variants"][0]["ckpt"])
        self.assertEqual(done["folder_back"], fam.back(done["saved"]))

    def check_reverse(self, key):
        """Every variant's reverse gives back every saved tensor, byte for byte."""
        fam, _, done = self.family(key)
        want = fam.back(done["saved"])
        for v, result in zip(fam.variants, done["variants"]):
            with self.subTest(variant=v.label):
                self.assertEqual(sorted(result["back"]), sorted(want))
                for name in want:
                    self.assertEqual(result["back"][name], want[name], name)

    def check_logits(self, key):
        """transformers loads our reversed folders; logits equal the recorded ones exactly."""
        self.family(key)
        if self.logits_error:
            self.fail(self.logits_error)
        ids = [c["id"] for c in self.cases if c["family"] == key and c["id"] != CONTROL]
        self.assertTrue(ids)
        for case_id in ids:
            with self.subTest(case=case_id):
                r = self.logits.get(case_id)
                self.assertIsNotNone(r, f"{case_id}: no result")
                self.assertTrue(r["ok"], f"{case_id}: " + "\n".join(r["errors"]))
                self.assertEqual(r["info"]["model"], FAMILIES[key].cls)


    def test_9_control_a_changed_weight_changes_the_logits(self):
        self.family("qwen3")
        if self.logits_error:
            self.fail(self.logits_error)
        r = self.logits.get(CONTROL)
        self.assertIsNotNone(r, "the control case did not run")
        self.assertFalse(r["ok"], "a flipped exponent went unnoticed")
        self.assertTrue(any(e.startswith("logits differ") for e in r["errors"]), r["errors"])


STEPS = [("1_saved_with_the_hub_names", "check_saved", lambda fam: True),
         ("2_forward_names_and_tensors", "check_forward", lambda fam: True),
         ("3_experts_equal_transformers_fused", "check_experts", lambda fam: fam.experts),
         ("4_folder_output", "check_folder", lambda fam: fam.mcore),
         ("5_reverse_byte_identical", "check_reverse", lambda fam: True),
         ("6_logits_after_from_pretrained", "check_logits", lambda fam: True)]
for _i, (_key, _fam) in enumerate(FAMILIES.items()):
    for _step, _check, _applies in STEPS:
        if _applies(_fam):
            setattr(ExtendedFamilies, f"test_{_i}_{_key}_{_step}",
                    lambda self, key=_key, check=_check: getattr(self, check)(key))


def main():
    global WORK, VERSIONS
    WORK, VERSIONS = open_work("cw-fam-", [SCRIPT], BIN)
    try:
        print("extended families in {}: python {python}, torch {torch}, transformers "
              "{transformers}".format(ROOT, **VERSIONS), flush=True)
        prog = unittest.main(argv=[sys.argv[0]], verbosity=2, exit=False)
        return 0 if prog.result.wasSuccessful() else 1
    finally:
        WORK.remove()


if __name__ == "__main__":
    sys.exit(main())
