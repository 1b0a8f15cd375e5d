"""The half of the extended interop check that runs INSIDE the Debian sid chroot, with sid's
python3-torch (2.x), python3-safetensors and python3-transformers.

Driven by test_extended_clients.py, which runs outside with Debian 12's python and our binary
(the binary cannot run in the chroot: its libraries differ). Subcommands, DIR being a path as seen
inside the chroot:

  versions DIR   write DIR/versions.json (python, torch, safetensors, transformers, numpy)
  write DIR      write fixtures with the newer clients (torch.save, safetensors save_file,
                 transformers save_pretrained) and DIR/manifest.json describing every tensor in
                 them as the clients read them back: name, dtype code, shape, bytes, sha256
  verify DIR     load our outputs listed in DIR/verify.json with the newer clients, compare every
                 tensor with the expected entries (computed outside from the sources), write
                 DIR/verify-result.json; exit 1 if any case failed

Results go to files, not stdout: libraries in the chroot print diagnostics on stdout (UCX).
Everything is built locally (models from config objects), nothing is downloaded.
"""
import hashlib
import inspect
import json
import os
import shutil
import sys
import traceback
from collections import OrderedDict

import torch

# torch dtype name -> safetensors dtype code, for the dtypes ConvertWeight has.
DTYPE_NAMES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
    "uint16": "U16", "uint32": "U32", "uint64": "U64",
    "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2",
}
CODES = {getattr(torch, n): c for n, c in DTYPE_NAMES.items() if hasattr(torch, n)}


def versions():
    import numpy
    import safetensors
    import transformers
    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "safetensors": safetensors.__version__, "transformers": transformers.__version__,
            "numpy": numpy.__version__}


def raw_bytes(t):
    """The tensor's C-order little-endian bytes, whatever its dtype or strides."""
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def describe(name, t):
    data = raw_bytes(t)
    return {"name": name, "dtype": CODES.get(t.dtype, str(t.dtype)), "shape": list(t.shape),
            "nbytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def flatten(obj, prefix=""):
    """(tensors, skipped): nested dicts of tensors flattened with '.', in insertion order, as
    ConvertWeight names them (int keys in decimal); other leaves are listed as skipped."""
    tensors, skipped = [], []
    for k, v in obj.items():
        if not isinstance(k, (str, int)) or isinstance(k, bool):
            continue
        name = f"{prefix}{k}"
        if isinstance(v, torch.Tensor):
            tensors.append((name, v))
        elif isinstance(v, dict) and v:
            t, s = flatten(v, name + ".")
            tensors += t
            skipped += s
        else:
            skipped.append(name)
    return tensors, skipped


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# write: fixtures produced by the newer clients, and their manifest


def new_dtype_tensors(g):
    """Tensors of the dtypes torch 1.13 lacks (uint16/32/64, float8), including views sharing one
    storage and a transposed one; empty when this torch lacks them all."""
    sd = OrderedDict()
    if hasattr(torch, "uint16"):
        sd["u16"] = torch.tensor([1, -2, 300, -32768], dtype=torch.int16).view(torch.uint16)
        sd["u16.t"] = torch.arange(12, dtype=torch.int16).view(torch.uint16).view(3, 4).t()
    if hasattr(torch, "uint32"):
        sd["u32"] = torch.tensor([7, -1], dtype=torch.int32).view(torch.uint32)
    if hasattr(torch, "uint64"):
        sd["u64"] = torch.tensor([2**40, -1], dtype=torch.int64).view(torch.uint64)
    if hasattr(torch, "float8_e4m3fn"):
        base = (torch.randn(16, generator=g) * 4).to(torch.float8_e4m3fn)
        sd["f8_e4m3"] = base
        sd["f8_e4m3.view"] = base[4:10].view(2, 3)
    if hasattr(torch, "float8_e5m2"):
        sd["f8_e5m2.t"] = (torch.randn(3, 5, generator=g) * 100).to(torch.float8_e5m2).t()
    return sd


def legacy_dtype_tensors(g):
    """Every dtype a .bin can hold, with views sharing one storage at offsets, a transposed and an
    expanded view, bf16, a 0-dim and an empty tensor."""
    base = torch.randn(64, generator=g)
    sd = OrderedDict()
    sd["bf16"] = torch.randn(5, 7, generator=g).to(torch.bfloat16)
    sd["bf16.t"] = torch.randn(3, 4, generator=g).to(torch.bfloat16).t()
    sd["view.a"] = base[10:22].view(3, 4)
    sd["view.b"] = base[40:]
    sd["view.whole"] = base
    sd["transposed"] = torch.randn(4, 6, generator=g).t()
    sd["expanded"] = torch.arange(3.0).view(3, 1).expand(3, 4)
    sd["scalar"] = torch.tensor(2.5, dtype=torch.float64)
    sd["empty"] = torch.zeros(0, 3)
    sd["f16"] = torch.randn(9, generator=g).half()
    sd["i64"] = torch.tensor([1, -2, 2**40])
    sd["i32"] = torch.tensor([7, -7], dtype=torch.int32)
    sd["i16"] = torch.tensor([300, -300], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["名前.weight"] = torch.ones(2)
    return sd


def torch_manifest(path, expect_skipped=()):
    """What torch reads back from a file it wrote: tensors in pickle (insertion) order."""
    obj = torch.load(path, weights_only=False)
    tensors, skipped = flatten(obj)
    for name in expect_skipped:
        assert name in skipped, (name, skipped)
    return {"kind": "torch", "ordered": True,
            "tensors": [describe(n, t) for n, t in tensors], "skipped": list(expect_skipped)}


def safetensors_manifest(paths):
    from safetensors import safe_open
    out = []
    for p in paths:
        with safe_open(p, framework="pt") as f:
            out += [describe(k, f.get_tensor(k)) for k in f.keys()]
    return {"kind": "safetensors", "ordered": False, "tensors": out}


def folder_manifest(folder):
    """Tensors of an HF folder as its own client reads it: every *.safetensors through the
    safetensors library, every *.bin through torch.load."""
    names = sorted(os.listdir(folder))
    st = [os.path.join(folder, n) for n in names if n.endswith(".safetensors")]
    if st:
        m = safetensors_manifest(st)
    else:
        m = {"kind": "torch", "ordered": False, "tensors": []}
        for n in names:
            if n.endswith(".bin"):
                tensors, _ = flatten(torch.load(os.path.join(folder, n), weights_only=True))
                m["tensors"] += [describe(k, t) for k, t in tensors]
    m["files"] = names
    return m


def tiny_qwen2(tie, dtype):
    from transformers import AutoModelForCausalLM, Qwen2Config
    config = Qwen2Config(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         tie_word_embeddings=tie)
    torch.manual_seed(11 if tie else 12)
    model = AutoModelForCausalLM.from_config(config)
    return model.to(dtype).eval()


def save_bin_folder(model, folder):
    """An HF folder with pytorch_model.bin: save_pretrained(safe_serialization=False) where this
    transformers still offers it; transformers 5 only writes safetensors, so there we write it
    as transformers 4 did, torch.save(model.state_dict()) (tied weights share one storage)."""
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        model.save_pretrained(folder, safe_serialization=False)
        return "save_pretrained(safe_serialization=False)"
    os.makedirs(folder, exist_ok=True)
    # What save_pretrained records in the config before saving it.
    model.config.architectures = [type(model).__name__]
    model.config.dtype = str(model.dtype).split(".")[1]
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), os.path.join(folder, "pytorch_model.bin"))
    return "torch.save(model.state_dict()) + config.save_pretrained (save_pretrained writes only safetensors)"


def cmd_write(out):
    from safetensors.torch import save_file
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(1234)
    legacy = legacy_dtype_tensors(g)
    new = new_dtype_tensors(g)
    fixtures = OrderedDict()

    # torch.save with torch 2.x: byteorder/.format_version/.storage_alignment records, untyped
    # storages, _rebuild_tensor_v3 for dtypes without a legacy storage class.
    everything = OrderedDict(list(legacy.items()) + list(new.items()))
    torch.save(everything, os.path.join(out, "torch2_all_dtypes.pt"))
    torch.save(legacy, os.path.join(out, "torch2_bin_dtypes.pt"))
    torch.save(legacy, os.path.join(out, "torch2_protocol4.pt"), pickle_protocol=4)
    torch.save(legacy, os.path.join(out, "torch2_legacy_format.pt"),
               _use_new_zipfile_serialization=False)
    for name in ("torch2_all_dtypes.pt", "torch2_bin_dtypes.pt", "torch2_protocol4.pt",
                 "torch2_legacy_format.pt"):
        fixtures[name] = torch_manifest(os.path.join(out, name))

    # A training checkpoint: model nested under "model", a real AdamW state (int keys, floats,
    # tuples, bools, None) and an epoch counter.
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    model(torch.randn(2, 4, generator=g)).sum().backward()
    opt.step()
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
            "extra": {"bf16": legacy["bf16"], "view": legacy["view.a"]}}
    torch.save(ckpt, os.path.join(out, "torch2_nested.pth"))
    fixtures["torch2_nested.pth"] = torch_manifest(os.path.join(out, "torch2_nested.pth"),
                                                   expect_skipped=["epoch"])

    # The official safetensors writer (dtype-then-name order, its own header padding).
    contiguous = OrderedDict((k, v.contiguous().clone()) for k, v in everything.items())
    save_file(contiguous, os.path.join(out, "st_official.safetensors"),
              metadata={"format": "pt", "origin": "safetensors.torch.save_file"})
    fixtures["st_official.safetensors"] = safetensors_manifest(
        [os.path.join(out, "st_official.safetensors")])

    # transformers save_pretrained: sharded safetensors + index (untied, bf16), one file (tied,
    # f32), and a pytorch_model.bin folder (tied, bf16: shared storage in the pickle).
    notes = {}
    untied = tiny_qwen2(tie=False, dtype=torch.bfloat16)
    untied.save_pretrained(os.path.join(out, "hf_sharded"), max_shard_size="20KB")
    tied = tiny_qwen2(tie=True, dtype=torch.float32)
    tied.save_pretrained(os.path.join(out, "hf_single"))
    tied_bf16 = tiny_qwen2(tie=True, dtype=torch.bfloat16)
    notes["hf_bin"] = save_bin_folder(tied_bf16, os.path.join(out, "hf_bin"))
    for name, model in (("hf_sharded", untied), ("hf_single", tied), ("hf_bin", tied_bf16)):
        m = folder_manifest(os.path.join(out, name))
        # The files must hold the model's own state dict (minus tied copies save_pretrained drops).
        state = model.state_dict()
        for e in m["tensors"]:
            assert describe(e["name"], state[e["name"]]) == e, e["name"]
        fixtures[name] = m
    assert "model.safetensors.index.json" in fixtures["hf_sharded"]["files"], "not sharded"
    assert "pytorch_model.bin" in fixtures["hf_bin"]["files"]

    write_json(os.path.join(out, "manifest.json"),
               {"versions": versions(), "notes": notes, "fixtures": fixtures})


# ---------------------------------------------------------------------------------------------
# verify: the newer clients load our outputs


class CaseFailed(Exception):
    pass


def compare(errors, where, got, expected, ordered):
    """got: list of (name, tensor); expected: manifest entries."""
    names = [n for n, _ in got]
    want = [e["name"] for e in expected]
    if ordered and names != want:
        errors.append(f"{where}: names/order {names} != {want}")
    elif sorted(names) != sorted(want):
        errors.append(f"{where}: missing {sorted(set(want) - set(names))}, "
                      f"unexpected {sorted(set(names) - set(want))}")
    by_name = {e["name"]: e for e in expected}
    for name, t in got:
        e = by_name.get(name)
        if e is None:
            continue
        d = describe(name, t)
        for field in ("dtype", "shape", "nbytes", "sha256"):
            if d[field] != e[field]:
                errors.append(f"{where}: {name}: {field} {d[field]} != expected {e[field]}")
                break


def verify_torch(case, path, errors, info):
    modes = {
        "default": dict(),
        "weights_only": dict(weights_only=True),
        "mmap": dict(mmap=True, weights_only=True),
        "full_unpickler": dict(weights_only=False),
    }
    for mode, kwargs in modes.items():
        try:
            obj = torch.load(path, **kwargs)
        except Exception as e:  # noqa: BLE001 - report what torch said
            errors.append(f"torch.load({mode}): {type(e).__name__}: {e}")
            continue
        if not isinstance(obj, dict):
            errors.append(f"torch.load({mode}): top level is {type(obj).__name__}, not a dict")
            continue
        root = case.get("root_key")
        if root:
            if list(obj.keys()) != [root]:
                errors.append(f"torch.load({mode}): top-level keys {list(obj.keys())} != [{root!r}]")
                continue
            obj = obj[root]
        bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
        if bad:
            errors.append(f"torch.load({mode}): non-tensor values under {bad}")
        compare(errors, f"torch.load({mode})", [(k, v) for k, v in obj.items()
                                                if isinstance(v, torch.Tensor)],
                case["expect"], ordered=case.get("ordered", True))
    info["modes"] = list(modes)


def check_st_metadata(errors, where, meta):
    if not meta or meta.get("format") != "pt":
        errors.append(f"{where}: __metadata__ {meta!r} lacks format=pt")


def verify_safetensors_file(case, path, errors, info):
    from safetensors import safe_open
    from safetensors.torch import load, load_file
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        check_st_metadata(errors, "safe_open", meta)
        got = [(k, f.get_tensor(k)) for k in f.keys()]
        for k in f.keys():
            sl = f.get_slice(k)
            if list(sl.get_shape()) != list(f.get_tensor(k).shape):
                errors.append(f"get_slice({k}).get_shape() {sl.get_shape()} differs")
    compare(errors, "safe_open(framework='pt')", got, case["expect"], ordered=False)
    compare(errors, "load_file", list(load_file(path).items()), case["expect"], ordered=False)
    with open(path, "rb") as fh:
        compare(errors, "safetensors.torch.load(bytes)", list(load(fh.read()).items()),
                case["expect"], ordered=False)
    info["metadata"] = meta


def verify_safetensors_folder(case, path, errors, info):
    from safetensors import safe_open
    with open(os.path.join(path, "model.safetensors.index.json"), encoding="utf-8") as f:
        index = json.load(f)
    weight_map = index.get("weight_map", {})
    want = {e["name"]: e for e in case["expect"]}
    if sorted(weight_map) != sorted(want):
        errors.append(f"index weight_map names {sorted(weight_map)} != {sorted(want)}")
    total = index.get("metadata", {}).get("total_size")
    if total != sum(e["nbytes"] for e in case["expect"]):
        errors.append(f"index total_size {total} != {sum(e['nbytes'] for e in case['expect'])}")
    shards = sorted(set(weight_map.values()))
    on_disk = sorted(n for n in os.listdir(path) if n.endswith(".safetensors"))
    if shards != on_disk:
        errors.append(f"index shards {shards} != files {on_disk}")
    got = []
    for shard in shards:
        with safe_open(os.path.join(path, shard), framework="pt") as f:
            check_st_metadata(errors, shard, f.metadata())
            keys = list(f.keys())
            listed = sorted(k for k, v in weight_map.items() if v == shard)
            if sorted(keys) != listed:
                errors.append(f"{shard}: holds {sorted(keys)}, index says {listed}")
            got += [(k, f.get_tensor(k)) for k in keys]
    compare(errors, "shards via safe_open", got, case["expect"], ordered=False)
    info["shards"] = len(shards)


def verify_transformers(case, path, errors, info):
    import transformers
    from transformers import AutoModelForCausalLM
    dtype_kw = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    model, loading = AutoModelForCausalLM.from_pretrained(
        path, output_loading_info=True, local_files_only=True, **{dtype_kw: "auto"})
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if loading.get(key):
            errors.append(f"from_pretrained: {key} = {sorted(map(str, loading[key]))}")
    state = model.state_dict()
    expect = case["expect"]
    names = {e["name"] for e in expect}
    missing = sorted(names - set(state))
    if missing:
        errors.append(f"model.state_dict() lacks file tensors {missing}")
    compare(errors, "model.state_dict()", [(k, state[k]) for k in state if k in names],
            [e for e in expect if e["name"] in state], ordered=False)
    # Keys in the model but not in the files must be tied copies of loaded tensors.
    ptrs = {state[n].data_ptr(): n for n in names if n in state}
    extra = {k: ptrs.get(state[k].data_ptr()) for k in state if k not in names}
    untied = sorted(k for k, v in extra.items() if v is None)
    if untied:
        errors.append(f"model tensors not in the files and not tied to one: {untied}")
    with torch.no_grad():
        ids = torch.arange(6).view(1, 6) % model.config.vocab_size
        logits = model(input_ids=ids).logits
    if list(logits.shape) != [1, 6, model.config.vocab_size] or not torch.isfinite(
            logits.float()).all():
        errors.append(f"forward pass: logits {list(logits.shape)} not finite/shaped")
    info.update(model=type(model).__name__, dtype=str(model.dtype), tied=extra,
                files=sorted(os.listdir(path)))


VERIFIERS = {
    "torch": verify_torch,
    "safetensors_file": verify_safetensors_file,
    "safetensors_folder": verify_safetensors_folder,
    "transformers": verify_transformers,
}


def cmd_verify(base):
    with open(os.path.join(base, "verify.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    results = OrderedDict()
    for case in cases:
        errors, info = [], {}
        try:
            VERIFIERS[case["kind"]](case, os.path.join(base, case["path"]), errors, info)
        except Exception as e:  # noqa: BLE001 - a client refusing our file is a result
            errors.append(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        results[case["id"]] = {"ok": not errors, "errors": errors, "info": info}
    write_json(os.path.join(base, "verify-result.json"),
               {"versions": versions(), "results": results})
    return 0 if all(r["ok"] for r in results.values()) else 1


def main(argv):
    if len(argv) != 3 or argv[1] not in ("versions", "write", "verify"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd, d = argv[1], argv[2]
    if cmd == "versions":
        os.makedirs(d, exist_ok=True)
        write_json(os.path.join(d, "versions.json"), versions())
        return 0
    if cmd == "write":
        if os.path.isdir(d):
            shutil.rmtree(d)
        cmd_write(d)
        return 0
    return cmd_verify(d)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
