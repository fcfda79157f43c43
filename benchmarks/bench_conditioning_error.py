"""How far the blended per-step conditioning of inpainting checkpoints is from the exact one, on a real VAE encoder.

The exact conditioning of a call encodes the original with that call's free pixels blanked; the blend takes each
latent pixel from the host's encode (the whole region blanked) where the call frees it and from the original's
where it holds it (lib_diffdiff.core.conditioning). Both are computed here with the SD VAE encoder of a checkpoint
or VAE file (the ldm architecture, loaded from its keys; no WebUI needed), for every distinct free set of a run, and
compared on the conditioning latent (scaled as the model sees it):

- mean and largest |difference| over all latent values, and the same as a share of the difference between the
  host's single conditioning (per-step conditioning off) and the exact one: what the blend leaves of that error;
- split by distance from the free set's edge: latent pixels on it (within 1), near (2-4) and far (5 or more), since
  the encoder's convolutions only see a bounded field and the rest comes from its group norms and attention.

The free sets are those of Euler at --steps with strength 1 (a pixel of strength s is free from the call where
img2img at s would start), the map reduced to the latent by 8x8 means.

Usage: python benchmarks/bench_conditioning_error.py FILE.safetensors [--size 256] [--steps 16] [--image PNG]
       [--profile 256,512]  (also times one encode and the blend's own work per new free set at these sizes)
       FILE: an SD1.x/SD2/SDXL checkpoint (first_stage_model.*) or a VAE file (encoder.*, quant_conv.*)
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_conditioning import maps  # noqa: E402
from lib_diffdiff.core.conditioning import InpaintConditioning  # noqa: E402
from lib_diffdiff.core.schedule import img2img_t_enc  # noqa: E402


def norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1, self.conv1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return self.nin_shortcut(x) + self.conv2(F.silu(self.norm2(h)))


class AttnBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.norm = norm(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        b, c, hh, ww = h.shape
        q, k, v = (t.reshape(b, c, hh * ww).transpose(1, 2) for t in (self.q(h), self.k(h), self.v(h)))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, c, hh, ww)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Encoder(nn.Module):
    """ldm's ``Encoder`` + ``quant_conv`` (the first stage of SD1.x, SD2 and SDXL), shaped from a state dict."""

    def __init__(self, sd: dict[str, torch.Tensor]):
        super().__init__()
        self.conv_in = nn.Conv2d(3, sd["encoder.conv_in.weight"].shape[0], 3, padding=1)
        self.down = nn.ModuleList()
        levels = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("encoder.down."))
        for i in range(levels):
            level = nn.Module()
            blocks = sorted({int(k.split(".")[4]) for k in sd if k.startswith(f"encoder.down.{i}.block.")})
            level.block = nn.ModuleList(
                ResnetBlock(
                    sd[f"encoder.down.{i}.block.{j}.norm1.weight"].shape[0],
                    sd[f"encoder.down.{i}.block.{j}.conv1.weight"].shape[0],
                )
                for j in blocks
            )
            if f"encoder.down.{i}.downsample.conv.weight" in sd:
                level.downsample = Downsample(sd[f"encoder.down.{i}.downsample.conv.weight"].shape[0])
            self.down.append(level)
        c = sd["encoder.mid.block_1.conv1.weight"].shape[0]
        self.mid = nn.Module()
        self.mid.block_1, self.mid.attn_1, self.mid.block_2 = ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c)
        self.norm_out = norm(c)
        self.conv_out = nn.Conv2d(c, sd["encoder.conv_out.weight"].shape[0], 3, padding=1)
        self.quant_conv = nn.Conv2d(*sd["quant_conv.weight"].shape[:2][::-1], 1)
        self.load_state_dict({k.removeprefix("encoder."): v for k, v in sd.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            for block in level.block:
                h = block(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        h = self.conv_out(F.silu(self.norm_out(h)))
        return self.quant_conv(h)[:, : h.shape[1] // 2]  # the posterior's mean


DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}


def read_tensors(path: str, prefixes: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The float tensors of a .safetensors file whose names start with one of ``prefixes``, and all its names (the
    format: an 8-byte header length, a JSON header of names, dtypes, shapes and offsets, then the data); read
    without the safetensors package, which the project's own environment does not have."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        header.pop("__metadata__", None)
        out = {}
        for name, info in header.items():
            if not name.startswith(prefixes) or info["dtype"] not in DTYPES:
                continue
            start, end = info["data_offsets"]
            f.seek(8 + length + start)
            data = bytearray(f.read(end - start))
            out[name] = torch.frombuffer(data, dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).float()
    return out, list(header)


def load_encoder(path: str) -> tuple[Encoder, float]:
    """The encoder of a checkpoint (``first_stage_model.`` keys) or a VAE file, and its latent scale (SDXL's when
    the file has SDXL's text encoders, ``conditioner.``)."""
    tensors, names = read_tensors(
        path, ("first_stage_model.encoder.", "first_stage_model.quant_conv.", "encoder.", "quant_conv.")
    )
    sd = {k.removeprefix("first_stage_model."): v for k, v in tensors.items()}
    sdxl = any(n.startswith("conditioner.") for n in names)
    return Encoder(sd).eval(), 0.13025 if sdxl else 0.18215


def picture(size: int) -> torch.Tensor:
    """A smooth test picture with edges: colour ramps, a disc and a bar, in [-1, 1]."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    img = torch.stack([x, y, 0.5 + 0.4 * torch.sin(6 * x + 3 * y)])
    img[:, (x - 0.35) ** 2 + (y - 0.6) ** 2 < 0.04] = torch.tensor([0.9, 0.2, 0.1])[:, None]
    img[:, (y > 0.2) & (y < 0.3)] *= 0.3
    return img[None] * 2 - 1


def edge_distance(free: torch.Tensor) -> torch.Tensor:
    """Each latent pixel's distance (Chebyshev, in latent pixels) from the nearest pixel of the other state."""
    f = free.float()
    dist = torch.full_like(f, 99.0)
    for r in range(1, 8):
        pad = F.pad(f, (r, r, r, r), mode="replicate")
        mixed = (F.max_pool2d(pad, 2 * r + 1, stride=1) - -F.max_pool2d(-pad, 2 * r + 1, stride=1)) > 0.5
        dist = torch.where(mixed & (dist == 99), torch.tensor(float(r)), dist)
    return dist


def conditioning_function(encoder: Encoder, scale: float, source: torch.Tensor):
    """The hosts' inpainting_image_conditioning for ``source`` (mask weight 1): an image-resolution mask -> the mask
    at latent size beside the masked image's scaled latent."""

    def encode(mask: torch.Tensor) -> torch.Tensor:
        latent = encoder(source * (1 - mask)) * scale
        return torch.cat([F.interpolate(mask, size=latent.shape[-2:]), latent], dim=1)

    return encode


def profile(encoder: Encoder, scale: float, sizes: str) -> None:
    """Where a call's time goes, per image size: one VAE encode (the exact conditioning's cost for each new free
    set, the blend's once a run) against the blend's own work when the free set changes (mask to image resolution,
    the comparison with the host's mask, the per-latent-pixel choice)."""
    for size in (int(s) for s in sizes.split(",") if s):
        source = picture(size)

        encode = conditioning_function(encoder, scale, source)
        t0 = time.perf_counter()
        host = encode(torch.ones(1, 1, size, size))
        encode_s = time.perf_counter() - t0
        conditioning = InpaintConditioning(host, torch.ones(1, 1, size, size), encode)
        conditioning.original()
        h = size // 8
        held = torch.zeros(1, 1, h, h, dtype=torch.bool)
        t0 = time.perf_counter()
        for k in range(h):  # a new free set at every call
            held[..., k] = True
            conditioning.for_call(held)
        blend_ms = (time.perf_counter() - t0) / h * 1000
        print(f"  {size}x{size}: one encode {encode_s:.2f} s; the blend's work for a new free set {blend_ms:.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--image", default=None, help="an RGB picture (resized to --size), else a synthetic one")
    parser.add_argument("--profile", default="256,512", help="image sizes to time an encode and the blend at")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    encoder, scale = load_encoder(args.file)
    size = args.size
    if args.image:
        rgb = np.asarray(Image.open(args.image).convert("RGB").resize((size, size)), np.float32) / 127.5 - 1
        source = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    else:
        source = picture(size)

    encode = conditioning_function(encoder, scale, source)

    host = encode(torch.ones(1, 1, size, size))
    print(f"{Path(args.file).name}: {size}x{size}, {args.steps} steps")
    profile(encoder, scale, args.profile)
    print("map       sets | blend vs exact: mean  max  (share of the host's) | on edge: mean max | near | far")
    for name, values in maps(size).items():
        strength = F.avg_pool2d(torch.from_numpy(values / 255).float()[None, None], 8)
        t_enc = strength.apply_(lambda s: img2img_t_enc(s, args.steps))
        blend = InpaintConditioning(host, torch.ones(1, 1, size, size), encode)
        diffs, dists, host_diffs = [], [], []
        for m in sorted({int(v) for v in t_enc.unique() if v > 0}, reverse=True):
            free = t_enc >= m
            exact = encode(F.interpolate(free.float(), size=(size, size), mode="nearest"))
            diffs.append((blend.for_call(~free) - exact)[:, 1:].abs())
            host_diffs.append((host - exact)[:, 1:].abs())
            dists.append(edge_distance(free).expand_as(diffs[-1]))
        d, dist, h = torch.cat(diffs), torch.cat(dists), torch.cat(host_diffs)
        bands = [(dist <= 1), (dist > 1) & (dist <= 4), (dist > 4)]
        cells = " | ".join(
            f"{float(d[b].mean()):.4f} {float(d[b].max()):.4f}" if b.any() else "   -      -   " for b in bands
        )
        print(
            f"{name:9s} {len(diffs):4d} | {float(d.mean()):.4f} {float(d.max()):.4f} "
            f"({float(d.mean()) / float(h.mean()):.2f}, {float(d.max()) / float(h.max()):.2f}) | {cells}"
        )
        print(f"{'':9s}      | the host's single conditioning vs exact: {float(h.mean()):.4f} {float(h.max()):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
