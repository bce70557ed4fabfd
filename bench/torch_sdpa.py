#!/usr/bin/env python3
"""PyTorch scaled_dot_product_attention on the same GPU, as the peer of `npm run bench:gpu`.

Times the FLASH, CUDNN and EFFICIENT backends in fp16 and EFFICIENT in fp32 (TF32 off) for the
benchmark shapes, with CUDA events (median of N after warm-up, inputs rotated over 3 sets so L2
does not serve repeats). Prints one JSON object on stdout: {"torch": version, "device": name,
"results": [{"shape", "backend", "dtype", "ms", "tflops"} ...]}. Causal masks use PyTorch's
is_causal (top-left), which equals bottom-right when Sq == Sk; decode (Sq=1) is non-causal.

Usage: python3 bench/torch_sdpa.py [--shapes a,b] [--runs N]
"""
import time
import argparse
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = {
    # name: (B, H, Hk, Sq, Sk, D, causal)
    "vitL14-336": (8, 16, 16, 577, 577, 64, False),
    "siglip-384": (8, 16, 16, 729, 729, 72, False),
    "qwen2vl-1024px": (1, 16, 16, 5329, 5329, 80, False),
    "prefill-4k-gqa": (1, 32, 8, 4096, 4096, 128, True),
    "decode-kv4k": (16, 32, 8, 1, 4096, 128, False),
    "8k-d64": (1, 16, 16, 8192, 8192, 64, False),
    "8k-d128-causal": (1, 16, 16, 8192, 8192, 128, True),
}

BACKENDS = [
    ("FLASH", SDPBackend.FLASH_ATTENTION, torch.float16),
    ("CUDNN", SDPBackend.CUDNN_ATTENTION, torch.float16),
    ("EFFICIENT", SDPBackend.EFFICIENT_ATTENTION, torch.float16),
    ("EFFICIENT", SDPBackend.EFFICIENT_ATTENTION, torch.float32),
]


def flops(B, H, Sq, Sk, D, causal):
    f = 4.0 * B * H * Sq * Sk * D
    return f / 2 if causal and Sq == Sk else f


WARM_S = 0.5


def bench(shape, backend, dtype, runs):
    B, H, Hk, Sq, Sk, D, causal = SHAPES[shape]
    sets = []
    for s in range(3):
        g = torch.Generator(device="cuda").manual_seed(s)
        q = torch.randn(B, H, Sq, D, device="cuda", dtype=dtype, generator=g)
        k = torch.randn(B, Hk, Sk, D, device="cuda", dtype=dtype, generator=g)
        v = torch.randn(B, Hk, Sk, D, device="cuda", dtype=dtype, generator=g)
        sets.append((q, k, v))
    kw = {"is_causal": causal}
    if Hk != H:
        kw["enable_gqa"] = True
    with sdpa_kernel([backend]):
        for q, k, v in sets:
            F.scaled_dot_product_attention(q, k, v, **kw)
        torch.cuda.synchronize()
        # Clock warm-up: the card idles at a low SM clock and needs ~0.3 s of load to reach boost.
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < WARM_S:
            for q, k, v in sets:
                F.scaled_dot_product_attention(q, k, v, **kw)
            torch.cuda.synchronize()
        times = []
        for i in range(runs):
            q, k, v = sets[i % 3]
            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            a.record()
            F.scaled_dot_product_attention(q, k, v, **kw)
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b))
    times.sort()
    ms = times[len(times) // 2]
    return ms, flops(B, H, Sq, Sk, D, causal) / (ms * 1e-3) / 1e12


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "results": []}
    for shape in args.shapes.split(","):
        for name, backend, dtype in BACKENDS:
            entry = {"shape": shape, "backend": name, "dtype": "fp16" if dtype == torch.float16 else "fp32"}
            try:
                ms, tf = bench(shape, backend, dtype, args.runs)
                entry.update({"ms": ms, "tflops": tf})
            except Exception as e:  # a backend may not support a shape (e.g. FLASH with fp32)
                entry.update({"error": str(e).splitlines()[0][:200]})
            out["results"].append(entry)
            torch.cuda.empty_cache()
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
