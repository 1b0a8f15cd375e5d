"""Writes cast inputs and PyTorch's results for tests/engine/tensor/dtype_cast_test.cc.

Usage: /usr/bin/python3 torch_casts.py OUT_DIR
Writes <from>.bin (raw little-endian input) and <from>_to_<to>.bin (torch's `.to(dtype)` output)
for every pair of F64 F32 F16 BF16. 16-bit inputs are all 65,536 bit patterns; F32 and F64 inputs
are special values, values at every rounding boundary of the narrower types, and random bits.

ATen converts the last (n mod vector width) elements of a tensor with its scalar code, which maps
a NaN to 0x7FC0 when going to bfloat16 from float64, while its vectorised body gives 0xFFFF. The
result for NaN thus depends on the NaN's position in torch; ConvertWeight always gives the
vectorised body's answer. The F32 and F64 inputs end with 64 ordinary values so that every NaN
here goes through torch's vectorised body.
"""
import os
import sys

import torch

NAMES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
INT_VIEW = {torch.float64: torch.int64, torch.float32: torch.int32,
            torch.float16: torch.int16, torch.bfloat16: torch.int16}


def raw(t):
    return t.contiguous().view(INT_VIEW[t.dtype]).numpy().tobytes()


def inputs():
    g = torch.Generator().manual_seed(1128)
    all16 = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    f32_bits = [torch.randint(-2**31, 2**31, (1 << 20,), generator=g, dtype=torch.int64)]
    # Around every exponent: exact halves, just above and below, for the 16-bit targets.
    for e in range(0, 256):
        for low in (0x0000, 0x0FFF, 0x1000, 0x1001, 0x2000, 0x3000, 0x7FFF, 0x8000, 0x8001,
                    0x18000, 0x7FE000, 0x7FF000, 0x7FFFFF):
            v = (e << 23) | low
            f32_bits.append(torch.tensor([v, v | (1 << 31), v | 0x10000], dtype=torch.int64))
    f32 = torch.cat(f32_bits).to(torch.int32).view(torch.float32)
    f64_bits = torch.randint(-2**62, 2**62, (1 << 18,), generator=g, dtype=torch.int64)
    specials = torch.tensor([0.0, -0.0, 1.0, -1.0, float("inf"), -float("inf"), float("nan"),
                             65504.0, 65520.0, 65519.999, 3.4e38, 3.5e38, 1e-45, 1e-46,
                             5.960464477539063e-08, 2.9802322387695312e-08, 1.0000000298023224,
                             1 + 2**-24 + 2**-53], dtype=torch.float64)
    tail = torch.linspace(-2.0, 2.0, 64)
    f32 = torch.cat([f32, tail])
    f64 = torch.cat([specials, f64_bits.view(torch.float64), f32.to(torch.float64)])
    return {
        torch.float16: all16.view(torch.float16),
        torch.bfloat16: all16.view(torch.bfloat16),
        torch.float32: f32,
        torch.float64: f64,
    }


def main():
    out = sys.argv[1]
    for src, t in inputs().items():
        with open(os.path.join(out, NAMES[src] + ".bin"), "wb") as f:
            f.write(raw(t))
        for dst in NAMES:
            if dst != src:
                with open(os.path.join(out, f"{NAMES[src]}_to_{NAMES[dst]}.bin"), "wb") as f:
                    f.write(raw(t.to(dst)))


if __name__ == "__main__":
    main()
