"""The half of interop.extended_families that runs INSIDE the Debian sid chroot, with sid's
python3-transformers (5.x) and python3-torch (2.x).

Driven by test_extended_families.py, which runs outside with Debian 12's python and our binary.
Subcommands, DIR being a path as seen inside the chroot:

  build DIR    for every family of DIR/families.json ({family: {"class", "config", "seed"}}):
               build the model with transformers' own class from the config, bf16 (what
               _keep_in_fp32_modules_strict names stays float32, as transformers keeps it), with
               a fixed seed; give every tensor transformers initialises to a constant (norms to
               ones, biases and the router's e_score_correction_bias to zeros) seeded noise, so
               that no comparison is between constants; save_pretrained it sharded into
               DIR/<family>/saved; record the logits of a fixed input_ids batch, and every
               in-memory tensor save_pretrained renames or splits (transformers 5 keeps MoE
               experts fused: mlp.experts.gate_up_proj, mlp.experts.down_proj), in
               DIR/<family>/memory.safetensors; check that from_pretrained of the saved folder
               gives the same logits (the control that makes the logits comparison of our
               reverse meaningful); write DIR/build.json
  logits DIR   for every case of DIR/logits.json ({"cases": [{"id", "family", "path"}]}):
               from_pretrained the folder (our reverse), with no missing, unexpected or
               mismatched keys; every tensor of its state dict equal (dtype, shape, bytes) to the
               one of the model built from the family's saved folder; logits torch.equal to the
               recorded ones; write DIR/logits-result.json, exit 1 if any case failed

Results go to files, not stdout (UCX prints on stdout in the chroot). Nothing is downloaded.
"""
import json
import os
import sys
import traceback
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_in_chroot import describe, versions, write_json  # noqa: E402

BATCH, SEQ = 2, 7


def build_model(spec):
    """The family's model, built by transformers from the config with its own class; bf16.
    Unless spec["keep_in_fp32"] is false, what the class's _keep_in_fp32_modules_strict names is
    then made float32, as from_pretrained keeps it (a model built from a config does not: its
    DeepseekV3 router bias buffer is created in the default dtype, bf16 here)."""
    import transformers
    cls = getattr(transformers, spec["class"])
    config = cls.config_class(**spec["config"])
    torch.manual_seed(spec["seed"])
    model = cls._from_config(config, dtype=torch.bfloat16)
    assert type(model) is cls, (type(model), cls)
    if spec.get("keep_in_fp32", True):
        keep = set(getattr(model, "_keep_in_fp32_modules_strict", None) or [])
        for module_name, module in model.named_modules():
            for name, t in list(module.named_parameters(recurse=False)) + list(
                    module.named_buffers(recurse=False)):
                if keep & set(f"{module_name}.{name}".split(".")):
                    if name in module._buffers:
                        module._buffers[name] = t.float()
                    else:
                        t.data = t.data.float()
    return model.eval()


def perturb_constants(model, seed):
    """Seeded noise on every tensor initialised to a constant (RMSNorm ones, zero biases, the
    zero e_score_correction_bias buffer), in its own dtype; returns their names."""
    g = torch.Generator().manual_seed(seed)
    changed = []
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.numel() > 1 and bool((t == t.reshape(-1)[0]).all()):
                noise = torch.randn(t.shape, generator=g) * 0.1
                t.copy_((t.float() + noise).to(t.dtype))
                changed.append(name)
    return changed


def input_ids(vocab, seed):
    return torch.randint(0, vocab, (BATCH, SEQ), generator=torch.Generator().manual_seed(seed))


def forward(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def load(path):
    """from_pretrained as a user would: dtype as saved, local files only."""
    from transformers import AutoModelForCausalLM
    model, info = AutoModelForCausalLM.from_pretrained(
        path, output_loading_info=True, local_files_only=True, dtype="auto")
    return model.eval(), info


def loading_errors(info):
    return [f"from_pretrained: {key} = {sorted(map(str, info[key]))}"
            for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")
            if info.get(key)]


def saved_tensors(folder):
    """{name: tensor} of an HF folder as the safetensors library reads it."""
    from safetensors import safe_open
    out = OrderedDict()
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(folder, f), framework="pt") as s:
                for k in s.keys():
                    out[k] = s.get_tensor(k)
    return out


def cmd_build(base):
    from safetensors.torch import save_file
    with open(os.path.join(base, "families.json"), encoding="utf-8") as f:
        families = json.load(f)
    report = OrderedDict()
    for family, spec in families.items():
        out = os.path.join(base, family)
        os.makedirs(out, exist_ok=True)
        model = build_model(spec)
        changed = perturb_constants(model, spec["seed"] + 1)
        state = model.state_dict()
        constant = [n for n, t in state.items() if t.numel() > 1
                    and bool((t == t.reshape(-1)[0]).all())]
        ids = input_ids(model.config.vocab_size, spec["seed"] + 2)
        logits = forward(model, ids)
        saved = os.path.join(out, "saved")
        model.save_pretrained(saved, max_shard_size=spec.get("max_shard_size", "20KB"))
        on_disk = saved_tensors(saved)
        # What save_pretrained renamed or split: the in-memory tensors absent from the files.
        memory_only = [n for n in state if n not in on_disk]
        save_file({n: state[n].contiguous() for n in memory_only} | {"input_ids": ids,
                                                                    "logits": logits},
                  os.path.join(out, "memory.safetensors"))
        reloaded, info = load(saved)
        control = loading_errors(info)
        if not torch.equal(forward(reloaded, ids), logits):
            control.append("from_pretrained of the saved folder gives other logits")
        report[family] = {
            "class": type(model).__name__, "config_class": type(model.config).__name__,
            "files": sorted(os.listdir(saved)),
            "memory": [describe(n, t) for n, t in state.items()],
            "saved": [describe(n, t) for n, t in on_disk.items()],
            "memory_only": memory_only, "perturbed": changed, "constant": constant,
            "control_errors": control, "logits_shape": list(logits.shape),
            "logits_finite": bool(torch.isfinite(logits.float()).all()),
        }
    write_json(os.path.join(base, "build.json"), {"versions": versions(), "families": report})


def cmd_logits(base):
    from safetensors.torch import load_file
    with open(os.path.join(base, "logits.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    originals = {}
    results = OrderedDict()
    for case in cases:
        errors, info = [], {}
        try:
            family = case["family"]
            if family not in originals:
                model, _ = load(os.path.join(base, family, "saved"))
                originals[family] = model.state_dict()
            want = originals[family]
            recorded = load_file(os.path.join(base, family, "memory.safetensors"))
            model, loading = load(os.path.join(base, case["path"]))
            errors += loading_errors(loading)
            got = model.state_dict()
            if sorted(got) != sorted(want):
                errors.append(f"state dict names differ: missing {sorted(set(want) - set(got))}, "
                              f"unexpected {sorted(set(got) - set(want))}")
            for name in sorted(set(got) & set(want)):
                if describe(name, got[name]) != describe(name, want[name]):
                    errors.append(f"state dict: {name} differs from the saved model's")
            logits = forward(model, recorded["input_ids"])
            if not torch.equal(logits, recorded["logits"]):
                diff = (logits.float() - recorded["logits"].float()).abs().max().item()
                errors.append(f"logits differ from the recorded ones (max |diff| {diff})")
            info.update(model=type(model).__name__, files=sorted(os.listdir(
                os.path.join(base, case["path"]))), logits_shape=list(logits.shape))
        except Exception as e:  # noqa: BLE001 - a load that fails is a result
            errors.append(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        results[case["id"]] = {"ok": not errors, "errors": errors, "info": info}
    write_json(os.path.join(base, "logits-result.json"),
               {"versions": versions(), "results": results})
    return 0 if all(r["ok"] for r in results.values()) else 1


def main(argv):
    if len(argv) != 3 or argv[1] not in ("build", "logits"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "build":
        cmd_build(argv[2])
        return 0
    return cmd_logits(argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
