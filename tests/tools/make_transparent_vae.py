#!/usr/bin/env python3
"""Write the hand-built "transparent" VAE for another latent scale, e.g. the SDXL one (0.13025).

The construction is the shared tool's (<shared-tools>/make_transparent_vae.py, imported by path; read its
docstring): encoder = 8x8 mean pool, decoder = nearest 8x8 upsampling, every weight set by hand, fp32 only.
The only difference here is the latent scale factor: the encoder divides by SCALE and the decoder multiplies by
it, so the *scaled* latent the sampler sees (raw latent * scale_factor) equals the 8x8 block mean in [-1, 1].
The SDXL VAE has the same AutoencoderKL architecture as SD1.x (ch 128, ch_mult 1,2,4,4, z 4) and the same
standalone key layout (encoder.*, decoder.*, quant_conv.*, post_quant_conv.*), so both hosts load the file from
models/VAE/ for an SDXL checkpoint; only the scale factor (0.13025, sd_xl_base.yaml / Forge latent.SDXL)
differs. A VAE made for 0.18215 would scale SDXL latents by 0.13025/0.18215 = 0.715.

A *gain* G > 1 (``--gain 16``) builds the VAE for scale / G: the latent the sampler sees is then G times the block
mean, so the noise and a random-weight model's updates are G times smaller against the image. Pixel round trips
stay exact; what changes is that a random model's output no longer clips: with the plain transparent VAE about 97 %
of the pixels come out 0 or 255 at strength 1, which makes img2img at 0.8 and at 1.0 look the same and hides how
the change grows with strength. The continuous-strength measurements (tests/integration/test_continuous_strength.py,
benchmarks/bench_smooth.py) use ``--scale 0.18215 --gain 16`` for SD1.5 (about a third of the pixels clip at 1).

Usage:  python tests/tools/make_transparent_vae.py OUT.safetensors [--scale 0.13025] [--gain 1] [--offset-levels 0.25]
            [--shared-tools DIR]   # default: <repo root>/../shared/tools
            [--check WEBUI]        # self-test: the shared tool's ldm check, then the SDXL (sgm) path
Run the check with the WebUI's venv (torch, safetensors, omegaconf, the ldm/sgm repositories).
"""

import argparse
import importlib.util
import os
import sys

import torch
from safetensors.torch import save_file

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def load_shared(shared_dir, scale):
    path = os.path.join(shared_dir, "make_transparent_vae.py")
    if not os.path.isfile(path):
        sys.exit(f"shared tool not found: {path} (pass --shared-tools)")
    spec = importlib.util.spec_from_file_location("shared_make_transparent_vae", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.SCALE = scale  # build() and self_check() read the module global at call time
    return mod


def sgm_check(sd, webui, scale, offset_levels):
    """SDXL path: sgm AutoencoderKLInferenceWrapper from sd_xl_base.yaml, encode * scale, decode(z / scale)."""
    import numpy as np
    from omegaconf import OmegaConf

    sys.path.insert(0, os.path.join(webui, "repositories", "generative-models"))
    from sgm.util import instantiate_from_config

    cfg = OmegaConf.load(
        os.path.join(webui, "repositories", "generative-models", "configs", "inference", "sd_xl_base.yaml")
    ).model.params
    cfg.first_stage_config.params.ddconfig.attn_type = "vanilla"  # as A1111 repair_config without xformers
    print(
        f"SDXL pipeline check (sgm {cfg.first_stage_config.target}, scale_factor in sd_xl_base.yaml = "
        f"{cfg.scale_factor}, VAE built for {scale})"
    )
    vae = instantiate_from_config(cfg.first_stage_config).eval()
    vae.load_state_dict(sd, strict=True)
    gen = torch.Generator().manual_seed(1)
    worst = 0
    with torch.no_grad():
        for size in (64, 256, 1024):
            img = torch.randint(0, 256, (1, 3, size // 8, size // 8), generator=gen).to(torch.uint8)
            img = img.repeat_interleave(8, 2).repeat_interleave(8, 3)
            x = torch.from_numpy(img.numpy().astype(np.float32) / 255.0) * 2 - 1
            z = vae.encode(x) * cfg.scale_factor  # DiffusionEngine.encode_first_stage
            mean = torch.nn.functional.avg_pool2d(x, 8)
            dz = (z[:, :3] - mean).abs().max().item()
            dec = vae.decode(z / cfg.scale_factor)  # DiffusionEngine.decode_first_stage
            u8 = (255.0 * torch.clamp((dec + 1.0) / 2.0, 0.0, 1.0).numpy()).astype(np.uint8)  # WebUI conversion
            bad = int((u8 != img.numpy()).sum())
            worst = max(worst, bad)
            print(
                f"  {size}x{size}: scaled latent ch0-2 vs block mean max |diff| {dz:.1e}, ch3 absmax "
                f"{z[:, 3].abs().max():.1e}; uint8 mismatches after decode {bad} of {img.numel()}"
            )
            assert dz < 1e-5 and bad == 0, (size, dz, bad)
    print("  SDXL roundtrip exact" if worst == 0 else "  SDXL roundtrip NOT exact")


def main():
    ap = argparse.ArgumentParser(description="Write a transparent VAE for a given latent scale (fp32 safetensors).")
    ap.add_argument("out")
    ap.add_argument("--scale", type=float, default=0.13025, help="latent scale factor (SDXL 0.13025, SD1.x 0.18215)")
    ap.add_argument("--gain", type=float, default=1.0, help="latent = gain x block mean (see the docstring)")
    ap.add_argument("--offset-levels", type=float, default=0.25)
    ap.add_argument("--shared-tools", default=os.path.join(REPO_ROOT, "..", "shared", "tools"))
    ap.add_argument("--check", metavar="WEBUI", help="A1111 checkout: run the ldm and the sgm (SDXL) self-checks")
    a = ap.parse_args()
    if a.gain != 1.0 and a.check:
        sys.exit("--check verifies the unit-gain construction only")
    mod = load_shared(os.path.abspath(a.shared_tools), a.scale / a.gain)
    sd = mod.build(a.offset_levels)
    save_file(
        sd,
        a.out,
        metadata={
            "transparent_vae": f"8x8 mean-pool/nearest VAE for latent scale {a.scale:g}, gain {a.gain:g}, "
            f"K={mod.K:g}, offset_levels={a.offset_levels:g}"
        },
    )
    print(f"wrote {a.out}: {len(sd)} tensors, {os.path.getsize(a.out)} bytes, scale {a.scale:g}, gain {a.gain:g}")
    if a.check:
        webui = os.path.abspath(a.check)
        print("ldm AutoencoderKL check (shared tool's self_check):")
        mod.self_check(sd, os.path.join(webui, "repositories", "stable-diffusion-stability-ai"), a.offset_levels)
        sgm_check(sd, webui, a.scale, a.offset_levels)


if __name__ == "__main__":
    main()
