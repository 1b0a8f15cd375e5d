#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpora (tests/fuzz/corpus/<parser>/).

The other seeds are copies of /work/shared/testdata/external samples (their names keep the
sample's origin: burn_*, hf_sample_*, mindscience_*, ...) and outputs of our own writers:

  convert_weight rewrite safetensors/hf_sample_overall.safetensors ckpt/writer_overall_crc.ckpt --crc
  convert_weight rewrite safetensors/hf_sample_overall.safetensors ckpt/writer_overall_chunked.ckpt \
      --chunk-bytes 8
  convert_weight rewrite safetensors/hf_sample_overall.safetensors safetensors/writer_overall.safetensors
  convert_weight rewrite ckpt/mindscience_spectralconv1d.ckpt safetensors/writer_from_ckpt.safetensors
  convert_weight rewrite safetensors/hf_sample_overall.safetensors out/ --max-shard-size 64
      (out/model.safetensors.index.json -> hf_index/writer_index_three_shards.json)
  convert_weight rewrite safetensors/burn_conv2d.safetensors torch/writer_conv2d.bin
  convert_weight rewrite safetensors/burn_embedding.safetensors \
      torch/writer_embedding_root_key.pth --root-key model

Run from tests/fuzz/corpus after those; needs only the Python standard library.
"""
import collections
import io
import pickle
import shutil
import struct
import zipfile


def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def len_field(field, payload):
    return bytes([field << 3 | 2]) + varint(len(payload)) + payload


def ckpt_record(tag, dims, tensor_type, content, packed=False):
    if packed:
        tensor = len_field(1, b"".join(varint(d) for d in dims))
    else:
        tensor = b"".join(b"\x08" + varint(d) for d in dims)
    tensor += len_field(2, tensor_type) + len_field(3, content)
    return len_field(1, len_field(1, tag) + len_field(2, tensor))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# .ckpt: packed dims, a str value, a random_op state, an old-style scalar (dims [0]).
write("ckpt/handmade_str_random_op_scalar.ckpt",
      ckpt_record(b"w", [2], b"Float32", struct.pack("<2f", 1, 2), packed=True) +
      ckpt_record(b"name", [], b"str", "ab".encode("utf-32-le")) +
      ckpt_record(b"rng", [4], b"random_op", b"\1\2\3\4") +
      ckpt_record(b"s", [0], b"Int64", struct.pack("<q", 7)))

# Pickles: data.pkl of real torch files, and allow-listed values in every protocol.
for name in ["burn_checkpoint.pt", "burn_parameter.pt", "burn_scalar.pt", "dtypes_views.pt",
             "burn_buffers.pt", "writer_embedding_root_key.pth"]:
    archive = zipfile.ZipFile("torch/" + name)
    pkl = next(n for n in archive.namelist() if n.endswith("data.pkl"))
    write("pickle/" + name.rsplit(".", 1)[0] + ".data.pkl", archive.read(pkl))
values = collections.OrderedDict([
    ("a", [1, 2.5, None, True, "x", b"\x00\x01"]), ("b", (1, (2, 3))),
    ("c", {"k": frozenset([1])}), ("d", {2}), ("e", bytearray(b"ab")), ("big", 2**70),
    ("neg", -5)])
for protocol in range(6):
    write(f"pickle/python_values_protocol{protocol}.pkl", pickle.dumps(values, protocol=protocol))

# Zips: real torch archives, then burn_scalar.pt rewritten deflated and as ZIP64.
for name in ["burn_checkpoint.pt", "dtypes_views.pt", "writer_conv2d.bin"]:
    shutil.copy("torch/" + name, "zip/" + name)
source = zipfile.ZipFile("torch/burn_scalar.pt")
for label, method, zip64 in [("deflated", zipfile.ZIP_DEFLATED, False),
                             ("stored_zip64", zipfile.ZIP_STORED, True)]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as out:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)  # reproducible
            entry.compress_type = method
            with out.open(entry, "w", force_zip64=zip64) as f:
                f.write(source.read(info.filename))
    write(f"zip/python_{label}.zip", buffer.getvalue())
    if label == "deflated":
        write("torch/python_deflated_scalar.pt", buffer.getvalue())
