#!/usr/bin/env python3
"""Write a random-weight SD1.5 ControlNet in the original ControlNet 1.1 key layout (``control_model.*``), for the
live companion tests (ControlNet beside a change map) on hosts that load ControlNet models: sd-webui-controlnet on
A1111/reForge, the built-in ControlNet of Forge and Forge Neo.

A ControlNet is the UNet's encoder (``time_embed``, ``input_blocks``, ``middle_block``) plus a hint encoder
(``input_hint_block``: eight 3x3 convolutions from the 3-channel hint to the model width, three of stride 2) and
1x1 "zero" convolutions on every encoder output (``zero_convs.0-11``, ``middle_block_out``). The encoder is copied
from an SD1.5 checkpoint (``model.diffusion_model.*``, e.g. shared/tools/make_random_sd15.py's), the rest is drawn at
random. The zero convolutions are NOT zero (as a trained ControlNet's are not), so the control changes the output.
The hosts find the architecture from these keys: Forge/Neo ``modules_forge/supported_controlnet.py`` (the
``control_model.zero_convs.0.0.weight`` key -> the "pth" layout, hint channels from ``input_hint_block.0.weight``);
sd-webui-controlnet strips the ``control_model.`` prefix the same way.

Usage (any Python with torch and safetensors, e.g. a host's venv):
    python tests/tools/make_controlnet.py --sd15 random-sd15.safetensors \\
        --out models/ControlNet/random-control_sd15_canny.safetensors [--seed 1]
Write it once per name the tests look for ("canny", "inpaint" in the file name): the weights can be the same.
"""

from __future__ import annotations

import argparse
import math

import torch
from safetensors.torch import load_file, save_file

UNET = "model.diffusion_model."
ENCODER = ("time_embed.", "input_blocks.", "middle_block.")
HINT = [(3, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 96, 2), (96, 96, 1), (96, 256, 2), (256, 320, 1)]
"""(in, out, stride) of input_hint_block's convolutions, at Sequential indices 0, 2, ..., 14 (SiLU between)."""


def encoder_channels(sd: dict[str, torch.Tensor]) -> list[int]:
    """Output channels of each input block (the width its zero convolution takes), read from the checkpoint."""
    channels = []
    i = 0
    while block := {k: v for k, v in sd.items() if k.startswith(f"{UNET}input_blocks.{i}.")}:
        conv = block.get(f"{UNET}input_blocks.{i}.0.weight")  # the input conv or a downsample's "op"
        op = block.get(f"{UNET}input_blocks.{i}.0.op.weight")
        out = block.get(f"{UNET}input_blocks.{i}.0.out_layers.3.weight")
        channels.append(int((conv if conv is not None else op if op is not None else out).shape[0]))
        i += 1
    return channels


def make(sd15: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def conv(cin: int, cout: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        w = torch.randn(cout, cin, k, k, generator=g) / math.sqrt(cin * k * k)
        return w, torch.randn(cout, generator=g) * 0.02

    out = {
        "control_model." + k[len(UNET) :]: v.clone()
        for k, v in sd15.items()
        if k.startswith(UNET) and k[len(UNET) :].startswith(ENCODER)
    }
    if not out:
        raise SystemExit("no model.diffusion_model.* encoder keys: not an SD1.x checkpoint in the ldm layout")
    dtype = next(iter(out.values())).dtype
    for index, (cin, cout, _) in zip(range(0, 16, 2), HINT, strict=True):
        w, b = conv(cin, cout, 3)
        out[f"control_model.input_hint_block.{index}.weight"], out[f"control_model.input_hint_block.{index}.bias"] = (
            w,
            b,
        )
    channels = encoder_channels(sd15)
    for i, ch in enumerate(channels):
        w, b = conv(ch, ch, 1)
        out[f"control_model.zero_convs.{i}.0.weight"], out[f"control_model.zero_convs.{i}.0.bias"] = w * 0.1, b
    mid = int(sd15[f"{UNET}middle_block.2.out_layers.3.weight"].shape[0])
    w, b = conv(mid, mid, 1)
    out["control_model.middle_block_out.0.weight"], out["control_model.middle_block_out.0.bias"] = w * 0.1, b
    return {k: v.to(dtype).contiguous() for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sd15", required=True, help="an SD1.x checkpoint (.safetensors, ldm key layout)")
    ap.add_argument("--out", required=True, help="the ControlNet file to write (.safetensors)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    sd = make(load_file(a.sd15), a.seed)
    save_file(sd, a.out)
    print(f"{a.out}: {len(sd)} tensors, zero convs {sum('zero_convs' in k for k in sd) // 2}")


if __name__ == "__main__":
    main()
