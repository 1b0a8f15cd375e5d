"""mae family (rules/mae.yaml, docs/models.md): a tiny facebookresearch/mae
MaskedAutoencoderViT, encoder only (as mae_pretrain_vit_base.pth) and with its decoder, saved as the
real files are, torch.save({"model": state_dict}), converted to a MindSpore .ckpt and back.

The encoder is test_family_vit.py's (same table but for the final norm, vit.norm); its expected
names are tests/e2e/expected/mae.txt. The decoder's top-level MindSpore names are this project's
choice and unverified (docs/models.md, rules/mae.yaml), so for the decoder the test checks only that
it leaves the encoder's names and tensors as they are and that the round trip is exact.
"""
import collections
import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import expected_names, read_ckpt, record, seeded  # noqa: E402
from cw_testlib import SOURCE, run  # noqa: E402
from test_family_vit import (DIM, PthFamilyTest, ckpt_matches, drop_from_ckpt,  # noqa: E402
                             random_named, read_bytes, save_pth, training_state, vit_block,
                             vit_encoder, vit_encoder_to_ms)

RULES = os.path.join(SOURCE, "rules/mae.yaml")

# MAE-Base proportions, scaled down: decoder narrower than the encoder (MAE: 512 vs 768) with the
# same MLP ratio, fewer decoder blocks (MAE: 8 vs 12); decoder_pred predicts patch**2 * 3 pixels.
DEC_DIM, DEC_DEPTH, DEC_MLP, PIXELS, TOKENS = 16, 2, 64, 4 * 4 * 3, 17


def mae_model(seed, decoder=False):
    """models_mae.py state_dict order: own parameters (cls_token, pos_embed, mask_token,
    decoder_pos_embed), then patch_embed, blocks, norm, decoder_embed, decoder_blocks,
    decoder_norm, decoder_pred."""
    g, f32 = seeded(seed), torch.float32
    named = vit_encoder(g, f32) + random_named(g, f32, "", [("norm.weight", [DIM]), ("norm.bias", [DIM])])
    if decoder:
        named[2:2] = random_named(g, f32, "", [("mask_token", [1, 1, DEC_DIM]),
                                               ("decoder_pos_embed", [1, TOKENS, DEC_DIM])])
        named += random_named(g, f32, "decoder_embed.", [("weight", [DEC_DIM, DIM]), ("bias", [DEC_DIM])])
        for i in range(DEC_DEPTH):
            named += vit_block(g, f"decoder_blocks.{i}.", DEC_DIM, DEC_MLP, f32)
        named += random_named(g, f32, "decoder_", [
            ("norm.weight", [DEC_DIM]), ("norm.bias", [DEC_DIM]),
            ("pred.weight", [PIXELS, DEC_DIM]), ("pred.bias", [PIXELS])])
    return collections.OrderedDict(named)


def mae_encoder_to_ms(src):
    """MindFormers' mae/convert_weight.py: vit's encoder table with norm -> vit.norm."""
    out = vit_encoder_to_ms(src)
    out.update({"vit.norm.gamma": src["norm.weight"], "vit.norm.beta": src["norm.bias"]})
    return out


class MaeFamily(PthFamilyTest):
    rules = RULES

    def test_encoder_names_and_tensors(self):
        model = mae_model(1)
        _, ckpt = self.forward(model)
        ckpt_matches(self, ckpt, mae_encoder_to_ms(model), "mae")

    def test_a_decoder_leaves_the_encoder_as_it_is(self):
        model = mae_model(2, decoder=True)
        _, ckpt = self.forward(model)
        got = read_ckpt(ckpt)
        encoder = {name: r for name, r in got.items() if name.startswith("vit.")}
        self.assertEqual(sorted(encoder), sorted(expected_names("mae")))
        for name, t in mae_encoder_to_ms(model).items():
            self.assertEqual(encoder[name], record(t), name)
        decoder_inputs = [n for n in model if n.startswith("decoder_") or n == "mask_token"]
        qkv_inputs = [n for n in decoder_inputs if ".attn.qkv." in n]
        self.assertEqual(len(got) - len(encoder), len(decoder_inputs) + 2 * len(qkv_inputs))

    def test_reverse_is_byte_identical(self):
        for decoder in (False, True):
            with self.subTest(decoder=decoder):
                pth, ckpt = self.forward(mae_model(3, decoder), f"m{int(decoder)}.pth")
                self.assert_round_trip(RULES, pth, ckpt)

    def test_training_checkpoint_converts_its_model_and_reports_the_rest(self):
        model = mae_model(4, decoder=True)
        plain, ckpt = self.forward(model)
        full, full_ckpt = self.path("train.pth"), self.path("train.ckpt")
        save_pth(full, model, **training_state(model, seeded(5)))
        p = run("convert", "--rules", RULES, "--input", full, "--output", full_ckpt)
        self.assertIn("optimizer", p.stderr)
        self.assertEqual(read_bytes(full_ckpt), read_bytes(ckpt))
        self.assert_round_trip(RULES, plain, full_ckpt)

    def test_seed_command_line_gives_the_same_bytes_as_rules(self):
        pth = self.path("mae.pth")
        save_pth(pth, mae_model(6, decoder=True))
        self.assert_seed_cli_same_as_rules("mae", RULES, pth)

    def test_lint_against_the_tiny_checkpoints(self):
        for decoder in (False, True):
            pth = self.path(f"l{int(decoder)}.pth")
            save_pth(pth, mae_model(7, decoder))
            self.assertIn("ok", run("lint", RULES, "--against", pth).stdout)

    def test_an_encoder_block_missing_a_tensor_fails_naming_it(self):
        model = mae_model(8, decoder=True)
        del model["blocks.1.attn.qkv.bias"]
        pth = self.path("m.pth")
        save_pth(pth, model)
        self.assert_fails(["convert", "--rules", RULES, "--input", pth, "--output", self.path("m.ckpt")],
                          "blocks.1.attn.qkv.bias")

    # Missing engine feature: an optional rule that matches some values of a count-less
    # placeholder is not checked for values from 0 without gaps (a required one is), so decoder
    # block 0 may lack a tensor unnoticed. Needed: optional rules exempt only from matching
    # nothing, not from contiguity (docs/rules.md §8, step 3, exempts them from both today).
    @unittest.expectedFailure
    def test_a_decoder_block_missing_a_tensor_fails_naming_it(self):
        model = mae_model(8, decoder=True)
        del model["decoder_blocks.0.mlp.fc1.weight"]
        pth = self.path("m.pth")
        save_pth(pth, model)
        self.assert_fails(["convert", "--rules", RULES, "--input", pth, "--output", self.path("m.ckpt")],
                          "decoder_blocks.0.mlp.fc1.weight")

    # Fine-tuned MAE ViTs (models_vit.py: head, fc_norm) are vit checkpoints (rules/vit.yaml names
    # mae_finetuned_vit_base.pth); rules/mae.yaml reads MaskedAutoencoderViT files only.
    def test_a_fine_tuned_vit_is_not_an_mae(self):
        model = mae_model(9)
        model["head.weight"] = torch.zeros(10, DIM)
        pth = self.path("h.pth")
        save_pth(pth, model)
        self.assert_fails(["convert", "--rules", RULES, "--input", pth, "--output", self.path("h.ckpt")],
                          "head.weight")

    def test_reverse_of_an_incomplete_qkv_fails_naming_the_missing_part(self):
        _, ckpt = self.forward(mae_model(10, decoder=True))
        broken = self.path("broken.ckpt")
        drop_from_ckpt(ckpt, broken, "vit.blocks.2.attention.dense3.weight")
        self.assert_fails(["convert", "--rules", RULES, "--input", broken, "--output", self.path("r.pth"),
                           "--reverse"], "vit.blocks.2.attention.dense3.weight")


if __name__ == "__main__":
    unittest.main(verbosity=2)
