"""vit family (rules/vit.yaml, docs/models.md): a tiny timm / facebookresearch/mae
VisionTransformer saved as the real files are, torch.save({"model": state_dict}), converted to a
MindSpore .ckpt and back.

The expected MindSpore tensors are computed here from the table of MindFormers'
mindformers/models/vit/convert_weight.py with torch ops (thirds of qkv on axis 0, .t() of attn.proj
/ mlp.fc1 / mlp.fc2 weights); the expected names are tests/e2e/expected/vit*.txt. test_family_mae.py
and test_family_swin.py reuse the .pth helpers.
"""
import collections
import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import (alone, checkpoint_pb2, convert, expected_names, randn, read_ckpt,  # noqa: E402
                        record, seed_convert, seeded)
from cw_testlib import SOURCE, TempDirTest, run  # noqa: E402

RULES = os.path.join(SOURCE, "rules/vit.yaml")

# ViT-Base proportions, scaled down: patch 4 on a 16x16 RGB image (16 patches + the class token),
# width 32 (ViT-B: 768), MLP ratio 4, 3 blocks, 10 classes.
DIM, DEPTH, PATCH, CHANS, TOKENS, MLP, CLASSES = 32, 3, 4, 3, 17, 128, 10


def save_pth(path, model, **training_state):
    """A timm/MAE/Swin-style file: the state dict under "model", training state beside it."""
    torch.save({"model": model, **training_state}, path)


def model_records(path):
    """{name: record} of the "model" dict of a .pth written by torch.save, read with torch."""
    obj = torch.load(path, weights_only=True)
    return {k: record(v) for k, v in obj["model"].items()}


def ckpt_matches(test, ckpt_path, expected_tensors, expected_list):
    """The .ckpt holds exactly the names of expected/<expected_list>.txt, each tensor equal (dtype,
    shape, bytes) to the independently computed one."""
    got = read_ckpt(ckpt_path)
    names = expected_names(expected_list)
    test.assertEqual(len(names), len(set(names)), expected_list)
    test.assertEqual(sorted(got), sorted(names))
    test.assertEqual(sorted(expected_tensors), sorted(names))
    for name, t in expected_tensors.items():
        test.assertEqual(got[name], record(t), name)


def training_state(model, g):
    """What facebookresearch/mae util/misc.py save_model stores next to "model" (without "args",
    an argparse.Namespace a safe unpickler must refuse): AdamW state per parameter, the epoch."""
    state = {i: {"step": torch.tensor(5.0), "exp_avg": randn(g, *t.shape), "exp_avg_sq": randn(g, *t.shape)}
             for i, t in enumerate(list(model.values())[:3])}
    return {"optimizer": {"state": state, "param_groups": [{"lr": 1e-3, "params": [0, 1, 2]}]},
            "epoch": 399}


def random_named(g, dtype, prefix, shapes):
    """[(prefix + name, a random tensor of that shape)] for (name, shape) in order."""
    return [(prefix + name, randn(g, *shape, dtype=dtype)) for name, shape in shapes]


def vit_block(g, hf, dim, mlp, dtype):
    """One timm Block in state_dict order: norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2."""
    return random_named(g, dtype, hf, [
        ("norm1.weight", [dim]), ("norm1.bias", [dim]),
        ("attn.qkv.weight", [3 * dim, dim]), ("attn.qkv.bias", [3 * dim]),
        ("attn.proj.weight", [dim, dim]), ("attn.proj.bias", [dim]),
        ("norm2.weight", [dim]), ("norm2.bias", [dim]),
        ("mlp.fc1.weight", [mlp, dim]), ("mlp.fc1.bias", [mlp]),
        ("mlp.fc2.weight", [dim, mlp]), ("mlp.fc2.bias", [dim])])


def vit_block_to_ms(src, hf, ms):
    """Block rows of MindFormers' vit/convert_weight.py: norms to layernorm gamma/beta, qkv thirds
    of axis 0 to dense1/2/3, attn.proj / mlp.fc1 / mlp.fc2 weights transposed."""
    out = {ms + "layernorm1.gamma": src[hf + "norm1.weight"],
           ms + "layernorm1.beta": src[hf + "norm1.bias"],
           ms + "layernorm2.gamma": src[hf + "norm2.weight"],
           ms + "layernorm2.beta": src[hf + "norm2.bias"],
           ms + "attention.projection.weight": src[hf + "attn.proj.weight"].t(),
           ms + "attention.projection.bias": src[hf + "attn.proj.bias"],
           ms + "output.mapping.weight": src[hf + "mlp.fc1.weight"].t(),
           ms + "output.mapping.bias": src[hf + "mlp.fc1.bias"],
           ms + "output.projection.weight": src[hf + "mlp.fc2.weight"].t(),
           ms + "output.projection.bias": src[hf + "mlp.fc2.bias"]}
    for suffix in ("weight", "bias"):
        q, k, v = torch.chunk(src[hf + "attn.qkv." + suffix], 3, dim=0)
        out.update({ms + "attention.dense1." + suffix: q, ms + "attention.dense2." + suffix: k,
                    ms + "attention.dense3." + suffix: v})
    return out


def vit_encoder(g, dtype):
    """The encoder part of a timm VisionTransformer in state_dict order (own parameters first)."""
    named = random_named(g, dtype, "", [("cls_token", [1, 1, DIM]), ("pos_embed", [1, TOKENS, DIM]),
                                        ("patch_embed.proj.weight", [DIM, CHANS, PATCH, PATCH]),
                                        ("patch_embed.proj.bias", [DIM])])
    for i in range(DEPTH):
        named += vit_block(g, f"blocks.{i}.", DIM, MLP, dtype)
    return named


def vit_encoder_to_ms(src):
    out = {"vit.cls_tokens": src["cls_token"], "vit.pos_embed": src["pos_embed"],
           "vit.patch_embed.proj.weight": src["patch_embed.proj.weight"],
           "vit.patch_embed.proj.bias": src["patch_embed.proj.bias"]}
    for i in range(DEPTH):
        out.update(vit_block_to_ms(src, f"blocks.{i}.", f"vit.blocks.{i}."))
    return out


def vit_model(seed, global_pool=False, dtype=torch.float32):
    """A fine-tuned ViT: final "norm", or with global pooling "fc_norm" (mae models_vit.py deletes
    norm) and, for the optional row, a mask_token; then the classifier head."""
    g = seeded(seed)
    named = vit_encoder(g, dtype)
    if global_pool:
        named[2:2] = random_named(g, dtype, "", [("mask_token", [1, 1, DIM])])
    norm = "fc_norm" if global_pool else "norm"
    named += random_named(g, dtype, "", [(norm + ".weight", [DIM]), (norm + ".bias", [DIM]),
                                         ("head.weight", [CLASSES, DIM]), ("head.bias", [CLASSES])])
    return collections.OrderedDict(named)


def vit_to_ms(src):
    out = vit_encoder_to_ms(src)
    if "fc_norm.weight" in src:
        out.update({"vit.fc_norm.gamma": src["fc_norm.weight"], "vit.fc_norm.beta": src["fc_norm.bias"]})
    else:
        out.update({"vit.layernorm.gamma": src["norm.weight"], "vit.layernorm.beta": src["norm.bias"]})
    if "mask_token" in src:
        out["vit.mask_tokens"] = src["mask_token"]
    out.update({"head.weight": src["head.weight"], "head.bias": src["head.bias"]})
    return out


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class PthFamilyTest(TempDirTest):
    """Checks shared by the .pth families (vit, mae, swin); subclasses set `rules`."""
    rules = None

    def forward(self, model, name="model.pth", *extra):
        """Saves `model` as a .pth under `name` and converts it to `name`.ckpt with --rules."""
        pth, ckpt = self.path(name), self.path(name + ".ckpt")
        save_pth(pth, model)
        convert(self.rules, pth, ckpt, *extra)
        return pth, ckpt

    def assert_fails(self, args, *needles, code=1):
        """The command fails with `code`, its message names every needle, and no output appears."""
        before = set(os.listdir(self.tmp))
        p = run(*args, check=False)
        self.assertEqual(p.returncode, code, p.stderr)
        for n in needles:
            self.assertIn(n, p.stderr)
        self.assertEqual(set(os.listdir(self.tmp)), before)

    def assert_round_trip(self, rules, pth, ckpt, *extra):
        """Reverse of the forward output, from the .ckpt alone in a folder of its own: a torch.save
        file {"model": ...} equal to the input's model dict in names, dtypes, shapes and bytes."""
        back = ckpt + ".back.pth"
        convert(rules, alone(self, ckpt), back, *extra, reverse=True)
        self.assertEqual(list(torch.load(back, weights_only=True)), ["model"])
        self.assertEqual(model_records(back), model_records(pth))
        return back

    def assert_seed_cli_same_as_rules(self, model_key, rules, pth, *extra, seed_extra=()):
        """--model KEY --input_path ... --output_path ... [--reversed] writes the bytes --rules
        writes, both ways. (A torch zip names its records after the file, hence equal file names
        in two folders.)"""
        by_rules, by_seed = pth + ".rules", pth + ".seed"
        os.mkdir(by_rules)
        os.mkdir(by_seed)
        ckpt, seed_ckpt = os.path.join(by_rules, "m.ckpt"), os.path.join(by_seed, "m.ckpt")
        convert(rules, pth, ckpt, *extra)
        seed_convert(model_key, pth, seed_ckpt, *seed_extra)
        self.assertEqual(read_bytes(seed_ckpt), read_bytes(ckpt))
        back, seed_back = os.path.join(by_rules, "back.pth"), os.path.join(by_seed, "back.pth")
        convert(rules, ckpt, back, *extra, reverse=True)
        seed_convert(model_key, ckpt, seed_back, *seed_extra, reverse=True)
        self.assertEqual(read_bytes(seed_back), read_bytes(back))
        self.assertEqual(model_records(back), model_records(pth))


class VitFamily(PthFamilyTest):
    rules = RULES

    def test_forward_names_and_tensors(self):
        model = vit_model(1)
        _, ckpt = self.forward(model)
        ckpt_matches(self, ckpt, vit_to_ms(model), "vit")

    def test_global_pool_fp16_with_mask_token(self):
        model = vit_model(2, global_pool=True, dtype=torch.float16)
        _, ckpt = self.forward(model)
        ckpt_matches(self, ckpt, vit_to_ms(model), "vit_global_pool")
        self.assertEqual({r[0] for r in read_ckpt(ckpt).values()}, {"F16"})

    def test_reverse_is_byte_identical(self):
        for global_pool in (False, True):
            with self.subTest(global_pool=global_pool):
                pth, ckpt = self.forward(vit_model(3, global_pool), f"v{int(global_pool)}.pth")
                self.assert_round_trip(RULES, pth, ckpt)

    def test_training_checkpoint_converts_its_model_and_reports_the_rest(self):
        model = vit_model(4)
        plain, ckpt = self.forward(model)
        full, full_ckpt = self.path("train.pth"), self.path("train.ckpt")
        save_pth(full, model, **training_state(model, seeded(5)))
        p = run("convert", "--rules", RULES, "--input", full, "--output", full_ckpt)
        self.assertIn("optimizer", p.stderr)
        self.assertIn("epoch", p.stderr)
        self.assertEqual(read_bytes(full_ckpt), read_bytes(ckpt))
        self.assert_round_trip(RULES, plain, full_ckpt)

    def test_seed_command_line_gives_the_same_bytes_as_rules(self):
        pth = self.path("vit.pth")
        save_pth(pth, vit_model(6))
        self.assert_seed_cli_same_as_rules("vit", RULES, pth)

    def test_dtype_bf16_casts_every_tensor_as_torch_does(self):
        model = vit_model(7)
        _, ckpt = self.forward(model, "vit.pth", "--dtype", "bf16")
        ckpt_matches(self, ckpt, {k: v.to(torch.bfloat16) for k, v in vit_to_ms(model).items()}, "vit")

    def test_lint_against_the_tiny_checkpoints(self):
        for global_pool in (False, True):
            pth = self.path(f"l{int(global_pool)}.pth")
            save_pth(pth, vit_model(8, global_pool))
            self.assertIn("ok", run("lint", RULES, "--against", pth).stdout)

    def test_an_unknown_tensor_fails_naming_it(self):
        model = vit_model(9)
        model["blocks.1.attn.q_norm.weight"] = torch.ones(DIM)
        pth = self.path("u.pth")
        save_pth(pth, model)
        self.assert_fails(["convert", "--rules", RULES, "--input", pth, "--output", self.path("u.ckpt")],
                          "blocks.1.attn.q_norm.weight")

    def test_a_missing_tensor_fails_naming_it(self):
        model = vit_model(10)
        del model["blocks.1.mlp.fc2.bias"]
        pth = self.path("m.pth")
        save_pth(pth, model)
        self.assert_fails(["convert", "--rules", RULES, "--input", pth, "--output", self.path("m.ckpt")],
                          "blocks.1.mlp.fc2.bias")

    # A placeholder without `count:` takes its values from every required rule of the same scope,
    # so a tensor missing from the LAST block is missing, not unknown (docs/rules.md §8).
    def test_a_tensor_missing_from_the_last_block_fails_naming_it(self):
        model = vit_model(10)
        del model[f"blocks.{DEPTH - 1}.mlp.fc2.bias"]
        pth = self.path("m.pth")
        save_pth(pth, model)
        self.assert_fails(["convert", "--rules", RULES, "--input", pth, "--output", self.path("m.ckpt")],
                          f"blocks.{DEPTH - 1}.mlp.fc2.bias")

    def test_a_missing_block_fails_naming_it(self):
        model = vit_model(11)
        for name in [n for n in model if n.startswith("blocks.1.")]:
            del model[name]
        pth = self.path("gap.pth")
        save_pth(pth, model)
        self.assert_fails(["convert", "--rules", RULES, "--input", pth, "--output", self.path("gap.ckpt")],
                          "blocks.1.")

    def test_qkv_rows_not_divisible_by_three_fail_naming_the_tensor(self):
        model = vit_model(12)
        model["blocks.0.attn.qkv.weight"] = torch.zeros(3 * DIM + 1, DIM)
        pth = self.path("q.pth")
        save_pth(pth, model)
        self.assert_fails(["convert", "--rules", RULES, "--input", pth, "--output", self.path("q.ckpt")],
                          "blocks.0.attn.qkv.weight")

    def test_reverse_of_an_incomplete_qkv_group_fails_naming_the_missing_part(self):
        pth, ckpt = self.forward(vit_model(13))
        broken = self.path("broken.ckpt")
        drop_from_ckpt(ckpt, broken, "vit.blocks.1.attention.dense2.bias")
        self.assert_fails(["convert", "--rules", RULES, "--input", broken, "--output", self.path("r.pth"),
                           "--reverse"], "vit.blocks.1.attention.dense2.bias")


def drop_from_ckpt(src, dst, name):
    """A copy of a .ckpt without one tensor, rewritten with Python protobuf."""
    msg = checkpoint_pb2().Checkpoint()
    msg.ParseFromString(read_bytes(src))
    kept = [v for v in msg.value if v.tag != name]
    assert len(kept) < len(msg.value), name
    del msg.value[:]
    msg.value.extend(kept)
    with open(dst, "wb") as f:
        f.write(msg.SerializeToString())


if __name__ == "__main__":
    unittest.main(verbosity=2)
