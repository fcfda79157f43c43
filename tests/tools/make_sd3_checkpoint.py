#!/usr/bin/env python3
"""Write a tiny random-weight Stable Diffusion 3 checkpoint that AUTOMATIC1111 1.10 detects, loads and runs.

A1111 takes a file for SD3 when it has ``model.diffusion_model.x_embedder.proj.weight``
(``modules/sd_models_config.py``) and reads the MMDiT's size from the keys (``modules/models/sd3/sd3_impls.py``
BaseModel): depth = x_embedder's width / 64, patch size, positional table, pooled and context widths. So a depth-2
MMDiT (width 128, two heads of 64) loads. It loads on the meta device, so every key of the model must be in the file:
the MMDiT, the text encoders CLIP-L and CLIP-G (``sd3_cond.py`` builds them at full size from fixed configs and
only downloads them when the file lacks them; T5-XXL is off by default and left out) and the VAE (16 channels,
scale 1.5305, shift 0.0609, no quant convs), here the transparent one of the shared tool rebuilt for that layout
(``make_flow_checkpoints.shifted_vae``), so held pixels come back exactly.

Sizes: MMDiT 9 M parameters (fp32), CLIP-L 123 M and CLIP-G 695 M (fp16 in the file: A1111 casts them on load),
VAE fp32: 1.7 GB. Random values: mean 0, std 0.05 for the MMDiT, 0.02 for the text encoders; norms around 1.

A1111 also loads T5's tokenizer (``google/t5-v1_1-xxl``) for every SD3 model, T5 on or off, and the host is
offline: put a T5 tokenizer into its Hugging Face cache (e.g. Forge Neo's
``backend/huggingface/black-forest-labs/FLUX.1-dev/tokenizer_2``, as ``hub/models--google--t5-v1_1-xxl``).

Usage (A1111's venv):
    python tests/tools/make_sd3_checkpoint.py --a1111 A1111_DIR
        --out A1111_DIR/models/Stable-diffusion/random-sd3.safetensors
        [--gain-vae models/VAE/gain16-sd3-vae.safetensors] [--shared-tools DIR] [--seed N]
The file is written as OUT.partial, then read back the host's way and each part loaded into A1111's own classes
and run: the VAE round trip exact, CLIP-L and CLIP-G on a prompt, the MMDiT on a [1, 16, 8, 8] latent; outputs
finite and not constant. Only then is it renamed into place.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_flow_checkpoints import (  # noqa: E402  (a sibling tool, not a package)
    REPO_ROOT,
    Rand,
    randomise,
    read_safetensors,
    shifted_vae,
    write_safetensors,
)

SD3_SCALE, SD3_SHIFT = 1.5305, 0.0609
POS_EMBED_MAX = 192  # SD3 medium's positional table (192 x 192 patches)


def import_a1111(a1111: str) -> None:
    """A1111's modules, initialised the way its launcher does (its args parser reads sys.argv)."""
    os.chdir(a1111)
    sys.path.insert(0, a1111)
    sys.argv = [sys.argv[0], "--use-cpu", "all", "--no-half", "--precision", "full"]
    from modules import initialize

    initialize.imports()


def meta_shapes(module: torch.nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def mmdit(depth: int):
    """The MMDiT as BaseModel builds it from a file of this depth (SD3 medium's other sizes)."""
    from modules.models.sd3.mmdit import MMDiT

    hidden = 64 * depth
    return MMDiT(
        input_size=None,
        pos_embed_scaling_factor=None,
        pos_embed_offset=None,
        pos_embed_max_size=POS_EMBED_MAX,
        patch_size=2,
        in_channels=16,
        depth=depth,
        num_patches=POS_EMBED_MAX**2,
        adm_in_channels=2048,
        context_embedder_config={"target": "torch.nn.Linear", "params": {"in_features": 4096, "out_features": hidden}},
        device="meta",
        dtype=torch.float32,
    )


def text_encoders(device: str = "meta"):
    """CLIP-L and CLIP-G as SD3Cond builds them (under no_grad: the projection is filled in place)."""
    from modules.models.sd3.other_impls import SDClipModel, SDXLClipG
    from modules.models.sd3.sd3_cond import CLIPG_CONFIG, CLIPL_CONFIG

    with torch.no_grad():
        clip_g = SDXLClipG(CLIPG_CONFIG, device=device, dtype=torch.float32)
        clip_l = SDClipModel(
            layer="hidden",
            layer_idx=-2,
            device=device,
            dtype=torch.float32,
            layer_norm_hidden_state=False,
            return_projected_pooled=False,
            textmodel_json_config=CLIPL_CONFIG,
        )
    return clip_l, clip_g


def build(depth: int, shared_tools: str) -> dict:
    """Every key SD3Inferencer has, random ones as Rand, the VAE transparent."""
    from modules.models.sd3.sd3_impls import SDVAE

    sd = {}
    for k, shape in randomise(meta_shapes(mmdit(depth)), std=0.05).items():
        sd["model.diffusion_model." + k] = shape
    clip_l, clip_g = text_encoders()
    for name, model in (("clip_l", clip_l), ("clip_g", clip_g)):
        for k, value in randomise(meta_shapes(model)).items():
            if k == "logit_scale":
                value = torch.tensor(4.6055)
            elif k.endswith("token_embedding.weight"):
                value = Rand(value.shape, 0.02)
            sd[f"text_encoders.{name}.{k}"] = value
    vae = shifted_vae(shared_tools, SD3_SCALE, SD3_SHIFT)
    expected = meta_shapes(SDVAE(device="meta"))
    assert {k: tuple(v.shape) for k, v in vae.items()} == expected, "the transparent VAE is not SD3's layout"
    sd.update({"first_stage_model." + k: v for k, v in vae.items()})
    return sd


def assert_live(name: str, out: torch.Tensor) -> None:
    assert torch.isfinite(out).all(), f"{name}: not finite"
    assert out.std() > 1e-4, f"{name}: constant output"
    print(f"  {name}: {tuple(out.shape)}, std {out.std():.4f}")


def part_of(sd: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def check(path: str, depth: int) -> None:
    """Each part read back and run in A1111's own classes."""
    from modules.models.sd3.other_impls import SD3Tokenizer
    from modules.models.sd3.sd3_impls import SD3LatentFormat, SDVAE, BaseModel

    sd = read_safetensors(path)
    torch.manual_seed(0)
    vae = SDVAE(device="cpu")
    vae.load_state_dict(part_of(sd, "first_stage_model."))
    fmt = SD3LatentFormat()
    blocks = torch.randint(0, 256, (1, 3, 8, 8)).float().repeat_interleave(8, 2).repeat_interleave(8, 3)
    image = blocks / 127.5 - 1
    latent = fmt.process_in(vae.encode(image))
    back = ((vae.decode(fmt.process_out(latent)) + 1) * 127.5).round()
    assert torch.equal(back, blocks), f"VAE round trip: max error {(back - blocks).abs().max()}"
    print("  VAE: round trip exact")

    tokens = SD3Tokenizer().tokenize_with_weights("a photo of a cat")
    clip_l, clip_g = text_encoders("cpu")
    pooled = []
    for name, model, key in (("clip_l", clip_l, "l"), ("clip_g", clip_g, "g")):
        part = {k: v.float() for k, v in part_of(sd, f"text_encoders.{name}.").items()}
        missing, unexpected = model.load_state_dict(part, strict=False)
        assert not missing and not unexpected, (missing, unexpected)
        hidden, pool = model([[t for t, _ in tokens[key][0]]])
        assert_live(name, hidden)
        pooled.append(pool)

    model = BaseModel(shift=3, state_dict=sd, prefix="model.diffusion_model.", device="cpu", dtype=torch.float32)
    part = {"diffusion_model." + k: v for k, v in part_of(sd, "model.diffusion_model.").items()}
    missing, unexpected = model.load_state_dict(part, strict=False)
    assert not unexpected and not [m for m in missing if m.startswith("diffusion_model.")], (missing, unexpected)
    assert model.depth == depth
    x = torch.randn(1, 16, 8, 8)
    out = model.apply_model(x, torch.tensor([0.7]), c_crossattn=torch.randn(1, 154, 4096), y=torch.cat(pooled, -1))
    assert_live("MMDiT (denoised)", out - x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a1111", required=True, help="an AUTOMATIC1111 1.10 checkout (its SD3 classes)")
    ap.add_argument("--out", required=True, help="the checkpoint to write (.safetensors)")
    ap.add_argument(
        "--gain-vae",
        metavar="FILE",
        help="also write the SD3-layout transparent VAE with gain 16 as a standalone VAE file (models/VAE)",
    )
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--shared-tools", default=os.path.join(REPO_ROOT, "..", "shared", "tools"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out, shared = os.path.abspath(a.out), os.path.abspath(a.shared_tools)
    gain_vae = os.path.abspath(a.gain_vae) if a.gain_vae else None
    import_a1111(os.path.abspath(a.a1111))
    if gain_vae:
        from safetensors.torch import save_file

        vae = {k: v.contiguous() for k, v in shifted_vae(shared, SD3_SCALE, SD3_SHIFT, 16.0).items()}
        save_file(vae, gain_vae, metadata={"transparent_vae": "SD3 layout, 16 channels, gain 16"})
        print(f"wrote {gain_vae}: {len(vae)} tensors")
    sd = build(a.depth, shared)
    counts = {}
    for k, v in sd.items():
        part = k.split(".")[1] if k.startswith("text_encoders.") else k.split(".")[0]
        counts[part] = counts.get(part, 0) + math.prod(v.shape)
    partial = out + ".partial"
    write_safetensors(partial, sd, a.seed, {"random": "sd3"}, half=("text_encoders.",))
    del sd
    try:
        check(partial, a.depth)
    except BaseException:
        os.remove(partial)
        raise
    os.replace(partial, out)
    params = ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in counts.items())
    print(f"wrote {out}: {os.path.getsize(out) / 1e9:.2f} GB ({params})")


if __name__ == "__main__":
    main()
