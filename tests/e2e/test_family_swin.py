"""swin family (rules/swin.yaml, docs/models.md): a tiny microsoft/Swin-Transformer
classifier and a tiny SimMIM pre-training model, saved as the real files are,
torch.save({"model": state_dict}), converted to a MindSpore .ckpt and back.

The backbone has the proportions of Swin-T scaled down: 4 stages of depths 2, 2, 4, 2 (Swin-T: 2, 2,
6, 2), width 8 doubling per stage, heads 1, 2, 4, 8, window 2 on an 8x8 patch grid, so that stages 0
and 1 have shifted-window attention masks, stage 2 fits one window and stage 3 shrinks its window to
1 (as stage 3 of a 224-pixel Swin does). The expected MindSpore tensors are computed here from the
table of MindFormers' swin/convert_weight.py (thirds of qkv on axis 0, .t() of the MLP weights
only); the expected names are tests/e2e/expected/swin*.txt.
"""
import collections
import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import convert, expected_names, read_ckpt, record, seed_convert, seeded  # noqa: E402
from cw_testlib import SOURCE, run  # noqa: E402
from test_family_vit import (PthFamilyTest, ckpt_matches, drop_from_ckpt,  # noqa: E402
                             random_named, read_bytes, save_pth, training_state)

RULES = os.path.join(SOURCE, "rules/swin.yaml")

PATCH, CHANS, GRID, EMBED, WINDOW, MLP_RATIO, CLASSES = 4, 3, 8, 8, 2, 4, 10
DEPTHS, HEADS = [2, 2, 4, 2], [1, 2, 4, 8]
STRIDE = PATCH * 2 ** (len(DEPTHS) - 1)  # SimMIM encoder_stride
FEATURES = EMBED * 2 ** (len(DEPTHS) - 1)


def relative_position_index(w):
    """WindowAttention's int64 buffer, computed as models/swin_transformer.py does."""
    coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += w - 1
    rel[:, :, 1] += w - 1
    rel[:, :, 0] *= 2 * w - 1
    return rel.sum(-1)


def attn_mask(res, w, shift):
    """SwinTransformerBlock's float buffer of a shifted-window block: 0 / -100 per window pair."""
    img = torch.zeros(1, res, res, 1)
    cnt = 0
    for h in (slice(0, -w), slice(-w, -shift), slice(-shift, None)):
        for v in (slice(0, -w), slice(-w, -shift), slice(-shift, None)):
            img[:, h, v, :] = cnt
            cnt += 1
    windows = img.view(1, res // w, w, res // w, w, 1).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w)
    mask = windows.unsqueeze(1) - windows.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


def backbone(g, prefix, ape=False):
    """SwinTransformer parameters and buffers (fp32, as released) in state_dict order (a module's
    own tensors before its children's), without the head."""
    f32 = torch.float32
    named = random_named(g, f32, prefix, [("absolute_pos_embed", [1, GRID * GRID, EMBED])] if ape else [])
    named += random_named(g, f32, prefix + "patch_embed.", [
        ("proj.weight", [EMBED, CHANS, PATCH, PATCH]), ("proj.bias", [EMBED]),
        ("norm.weight", [EMBED]), ("norm.bias", [EMBED])])
    for stage, depth in enumerate(DEPTHS):
        dim, res = EMBED * 2 ** stage, GRID // 2 ** stage
        window, hidden = min(WINDOW, res), dim * MLP_RATIO
        for block in range(depth):
            p = f"{prefix}layers.{stage}.blocks.{block}."
            if block % 2 == 1 and res > WINDOW:
                named.append((p + "attn_mask", attn_mask(res, window, window // 2)))
            named += random_named(g, f32, p, [
                ("norm1.weight", [dim]), ("norm1.bias", [dim]),
                ("attn.relative_position_bias_table", [(2 * window - 1) ** 2, HEADS[stage]])])
            named.append((p + "attn.relative_position_index", relative_position_index(window)))
            named += random_named(g, f32, p, [
                ("attn.qkv.weight", [3 * dim, dim]), ("attn.qkv.bias", [3 * dim]),
                ("attn.proj.weight", [dim, dim]), ("attn.proj.bias", [dim]),
                ("norm2.weight", [dim]), ("norm2.bias", [dim]),
                ("mlp.fc1.weight", [hidden, dim]), ("mlp.fc1.bias", [hidden]),
                ("mlp.fc2.weight", [dim, hidden]), ("mlp.fc2.bias", [dim])])
        if stage < len(DEPTHS) - 1:  # PatchMerging: Linear(4C, 2C, bias=False), LayerNorm(4C)
            named += random_named(g, f32, f"{prefix}layers.{stage}.downsample.", [
                ("reduction.weight", [2 * dim, 4 * dim]),
                ("norm.weight", [4 * dim]), ("norm.bias", [4 * dim])])
    return named + random_named(g, f32, prefix, [("norm.weight", [FEATURES]), ("norm.bias", [FEATURES])])


def classifier(seed, ape=False):
    """A fine-tuned models/swin_transformer.py SwinTransformer."""
    g = seeded(seed)
    named = backbone(g, "", ape)
    named += random_named(g, torch.float32, "head.", [("weight", [CLASSES, FEATURES]), ("bias", [CLASSES])])
    return collections.OrderedDict(named)


def simmim(seed):
    """models/simmim.py SimMIM: SwinTransformerForSimMIM (no head, a mask_token registered after the
    backbone's own parameters) under "encoder.", and decoder = Sequential(Conv2d 1x1, PixelShuffle)."""
    g = seeded(seed)
    named = random_named(g, torch.float32, "encoder.", [("mask_token", [1, 1, EMBED])])
    named += backbone(g, "encoder.")
    named += random_named(g, torch.float32, "decoder.0.", [("weight", [STRIDE * STRIDE * 3, FEATURES, 1, 1]),
                                                           ("bias", [STRIDE * STRIDE * 3])])
    return collections.OrderedDict(named)


def swin_to_ms(src, pretrain=False):
    """MindFormers' swin/convert_weight.py, written out: the independent expectation of every
    MindSpore tensor."""
    hf = "encoder." if pretrain else ""
    out = {}

    def ln(a, b):
        out[b + ".gamma"], out[b + ".beta"] = src[a + ".weight"], src[a + ".bias"]

    for suffix in ("weight", "bias"):
        out["encoder.patch_embed.projection." + suffix] = src[hf + "patch_embed.proj." + suffix]
    ln(hf + "patch_embed.norm", "encoder.patch_embed.norm")
    if hf + "absolute_pos_embed" in src:
        out["encoder.absolute_pos_embed"] = src[hf + "absolute_pos_embed"]
    for stage, depth in enumerate(DEPTHS):
        for block in range(depth):
            a, b = f"{hf}layers.{stage}.blocks.{block}.", f"encoder.layers.{stage}.blocks.{block}."
            ln(a + "norm1", b + "norm1")
            ln(a + "norm2", b + "norm2")
            for t in ("relative_position_bias_table", "relative_position_index"):
                out[b + "attn.relative_position_bias." + t] = src[a + "attn." + t]
            for suffix in ("weight", "bias"):
                q, k, v = torch.chunk(src[a + "attn.qkv." + suffix], 3, dim=0)
                out.update({b + "attn.q." + suffix: q, b + "attn.k." + suffix: k, b + "attn.v." + suffix: v})
                out[b + "attn.proj." + suffix] = src[a + "attn.proj." + suffix]  # no transpose
            out[b + "mlp.mapping.weight"] = src[a + "mlp.fc1.weight"].t()
            out[b + "mlp.mapping.bias"] = src[a + "mlp.fc1.bias"]
            out[b + "mlp.projection.weight"] = src[a + "mlp.fc2.weight"].t()
            out[b + "mlp.projection.bias"] = src[a + "mlp.fc2.bias"]
            if a + "attn_mask" in src:
                out[b + "attn_mask"] = src[a + "attn_mask"]
        if stage < len(DEPTHS) - 1:
            a, b = f"{hf}layers.{stage}.downsample.", f"encoder.layers.{stage}.downsample."
            out[b + "reduction.weight"] = src[a + "reduction.weight"]
            ln(a + "norm", b + "norm")
    ln(hf + "norm", "encoder.norm")
    if pretrain:
        out["encoder.mask_token"] = src["encoder.mask_token"]
        out["decoder.weight"], out["decoder.bias"] = src["decoder.0.weight"], src["decoder.0.bias"]
    else:
        out["head.weight"], out["head.bias"] = src["head.weight"], src["head.bias"]
    return out


class SwinFamily(PthFamilyTest):
    rules = RULES

    def test_fine_tuned_names_and_tensors(self):
        model = classifier(1)
        _, ckpt = self.forward(model, "swin.pth")
        ckpt_matches(self, ckpt, swin_to_ms(model), "swin")
        index = read_ckpt(ckpt)["encoder.layers.2.blocks.3.attn.relative_position_bias."
                                "relative_position_index"]
        self.assertEqual(index[:2], ("I64", [WINDOW ** 2, WINDOW ** 2]))

    def test_simmim_names_and_tensors(self):
        model = simmim(2)
        _, ckpt = self.forward(model, "simmim.pth", "--set", "is_pretrain=true")
        ckpt_matches(self, ckpt, swin_to_ms(model, pretrain=True), "swin_pretrain")

    def test_absolute_position_embedding_is_optional(self):
        model = classifier(3, ape=True)
        _, ckpt = self.forward(model, "ape.pth")
        got = read_ckpt(ckpt)
        self.assertEqual(sorted(got), sorted(expected_names("swin") + ["encoder.absolute_pos_embed"]))
        self.assertEqual(got["encoder.absolute_pos_embed"], record(model["absolute_pos_embed"]))

    def test_reverse_is_byte_identical(self):
        for name, model, extra in (("swin.pth", classifier(4), []), ("ape.pth", classifier(5, ape=True), []),
                                   ("simmim.pth", simmim(6), ["--set", "is_pretrain=true"])):
            with self.subTest(name):
                pth, ckpt = self.forward(model, name, *extra)
                self.assert_round_trip(RULES, pth, ckpt, *extra)

    def test_training_checkpoint_converts_its_model(self):
        model = simmim(7)
        plain, ckpt = self.forward(model, "simmim.pth", "--set", "is_pretrain=true")
        full, full_ckpt = self.path("train.pth"), self.path("train.ckpt")
        save_pth(full, model, **training_state(model, seeded(8)))
        convert(RULES, full, full_ckpt, "--set", "is_pretrain=true")
        self.assertEqual(read_bytes(full_ckpt), read_bytes(ckpt))

    def test_dtype_fp16_casts_floats_and_leaves_int64_buffers(self):
        model = classifier(9)
        _, ckpt = self.forward(model, "swin.pth", "--dtype", "fp16")
        expected = {k: (v if v.dtype == torch.int64 else v.to(torch.float16))
                    for k, v in swin_to_ms(model).items()}
        ckpt_matches(self, ckpt, expected, "swin")
        dtypes = collections.Counter(r[0] for r in read_ckpt(ckpt).values())
        self.assertEqual(dtypes["I64"], sum(DEPTHS))
        self.assertEqual(set(dtypes), {"I64", "F16"})

    def test_seed_is_pretrain_flag_parses_booleans(self):
        fine, fine_ckpt = self.forward(classifier(10), "swin.pth")
        pre, pre_ckpt = self.forward(simmim(11), "simmim.pth", "--set", "is_pretrain=true")
        for i, flag in enumerate((["--is_pretrain", "true"], ["--is_pretrain", "True"], ["--is_pretrain"],
                                  ["--is_pretrain=1"])):
            with self.subTest(flag=flag):
                out = self.path(f"p{i}.ckpt")
                seed_convert("swin", pre, out, *flag)
                self.assertEqual(read_bytes(out), read_bytes(pre_ckpt))
        for i, flag in enumerate(([], ["--is_pretrain", "False"], ["--is_pretrain", "false"],
                                  ["--is_pretrain=0"])):
            with self.subTest(flag=flag):
                out = self.path(f"f{i}.ckpt")
                seed_convert("swin", fine, out, *flag)
                self.assertEqual(read_bytes(out), read_bytes(fine_ckpt))
        # The reference's type=bool read "--is_pretrain False" as true; here it means the
        # fine-tuned names, which a SimMIM file does not have (and a given value is not overridden).
        self.assert_fails(["--model", "swin", "--input_path", pre, "--output_path", self.path("x.ckpt"),
                           "--is_pretrain", "False"], "encoder.mask_token", "is_pretrain = true")

    def test_forward_detects_a_simmim_file_and_reverse_takes_the_flag(self):
        pre, pre_ckpt = self.forward(simmim(20), "simmim.pth", "--set", "is_pretrain=true")
        fine, fine_ckpt = self.forward(classifier(21), "swin.pth", "--set", "is_pretrain=false")
        for pth, ckpt in ((pre, pre_ckpt), (fine, fine_ckpt)):
            out = pth + ".detected.ckpt"
            seed_convert("swin", pth, out)
            self.assertEqual(read_bytes(out), read_bytes(ckpt))
        # The MindSpore names do not tell: reverse defaults to the fine-tuned scheme.
        self.assert_fails(["--model", "swin", "--input_path", pre_ckpt, "--output_path", self.path("b.pth"),
                           "--reversed"], "decoder.weight")
        self.assert_round_trip(RULES, pre, pre_ckpt, "--set", "is_pretrain=true")

    def test_seed_command_line_gives_the_same_bytes_as_rules(self):
        for name, model, value in (("swin.pth", classifier(12), "false"), ("simmim.pth", simmim(13), "true")):
            with self.subTest(name):
                pth = self.path(name)
                save_pth(pth, model)
                self.assert_seed_cli_same_as_rules("swin", RULES, pth, "--set", "is_pretrain=" + value,
                                                   seed_extra=("--is_pretrain", value))

    def test_lint_against_the_tiny_checkpoints(self):
        fine, pre = self.path("swin.pth"), self.path("simmim.pth")
        save_pth(fine, classifier(14))
        save_pth(pre, simmim(15))
        self.assertIn("ok", run("lint", RULES, "--against", fine).stdout)
        self.assertIn("ok", run("lint", RULES, "--against", pre, "--set", "is_pretrain=true").stdout)
        self.assertIn("ok", run("lint", RULES, "--against", pre).stdout)

    def test_a_block_missing_inside_a_stage_fails_naming_it(self):
        model = classifier(16)
        for name in [n for n in model if n.startswith("layers.2.blocks.1.")]:
            del model[name]
        pth = self.path("gap.pth")
        save_pth(pth, model)
        self.assert_fails(["convert", "--rules", RULES, "--input", pth, "--output", self.path("gap.ckpt")],
                          "layers.2.blocks.1.")

    def test_a_missing_downsample_fails_naming_it(self):
        model = classifier(17)
        del model["layers.1.downsample.norm.bias"]
        pth = self.path("d.pth")
        save_pth(pth, model)
        self.assert_fails(["convert", "--rules", RULES, "--input", pth, "--output", self.path("d.ckpt")],
                          "layers.1.downsample.norm.bias")

    def test_an_unknown_tensor_fails_naming_it(self):
        model = classifier(18)
        model["layers.0.blocks.0.attn.logit_scale"] = torch.ones(1, 1, 1)  # a Swin V2 parameter
        pth = self.path("u.pth")
        save_pth(pth, model)
        self.assert_fails(["convert", "--rules", RULES, "--input", pth, "--output", self.path("u.ckpt")],
                          "layers.0.blocks.0.attn.logit_scale")

    def test_reverse_needs_all_of_q_k_v(self):
        _, ckpt = self.forward(classifier(19), "swin.pth")
        broken = self.path("broken.ckpt")
        drop_from_ckpt(ckpt, broken, "encoder.layers.1.blocks.0.attn.k.weight")
        self.assert_fails(["convert", "--rules", RULES, "--input", broken, "--output", self.path("r.pth"),
                           "--reverse"], "encoder.layers.1.blocks.0.attn.k.weight")


if __name__ == "__main__":
    unittest.main(verbosity=2)
