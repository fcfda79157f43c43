#!/usr/bin/env python3
"""Write a full-size random-weight Flux.1 dev (or Chroma) checkpoint in fp8 storage that Forge (dfdcbab6) runs.

Forge fixes Flux's size: its huggingface_guess (``repositories/huggingface_guess/huggingface_guess/detection.py``)
answers any file with ``double_blocks.0.img_attn.norm.key_norm.scale`` with width 3072, 24 heads, 19 double and 38
single blocks, whatever the keys say, so a tiny Flux does not load there: the transformer is 11.9 B parameters. The
only way it fits a 24 GB machine is Forge's fp8 storage: a file whose tensors are mostly ``float8_e4m3fn`` makes
``backend/loader.py`` keep the transformer in fp8 ("Using Detected UNet Type"), and ``ForgeOperations.Linear``
takes each stored weight as it is (no copy), casting it to the computation dtype (fp32 on the CPU test host) at each
call. So every transformer tensor is written in fp8 (drawn in fp32, rounded): 11.9 GB.

``--chroma``: Forge takes a Flux file without ``guidance_in`` but with Chroma's approximator
(``distilled_guidance_layer.*``) for Chroma (``backend/loader.py``, ``GuessChroma``: the same fixed width and depths,
the approximator 5120 wide with 5 layers, no modulation Linears in the blocks) and gives it T5 only: 8.9 B parameters
in fp8, T5 narrow in fp16, the same VAE; no CLIP-L in the file.

The rest as ``make_sd3_checkpoint.py --forge`` does for SD3: CLIP-L (MLPs 1 wide) and T5-XXL (``t5xxl_narrow``) in
fp16, which ``ForgeOperations.Linear`` takes at any shape, and the transparent VAE of the Flux layout (16 channels,
scale 0.3611, shift 0.1159, ``make_flow_checkpoints.flux_vae``) in fp32, so held pixels come back exactly. Prefixes
as Forge's ``model_list.Flux``: ``model.diffusion_model.`` (BFL names, RMSNorms as ``.scale``), ``text_encoders.
clip_l.`` and ``text_encoders.t5xxl.``, ``vae.``. Random values: mean 0, std 0.02 (norms around 1).

Usage (Forge's venv):
    python tests/tools/make_forge_flux_checkpoint.py --forge FORGE_DIR \\
        --out FORGE_DIR/models/Stable-diffusion/random-flux-dev-12b-fp8.safetensors [--no-run] [--seed N]
Written as OUT.partial, then split the host's way (huggingface_guess must name Flux, no key left over), loaded by
Forge's own ``forge_loader`` (its load messages fail the check; the transformer must be held in fp8) and run: the
VAE round trip exact, CLIP-L and T5 on a prompt, and (unless --no-run) the transformer once on a [1, 16, 8, 8]
latent, finite and not constant. Only then is it renamed into place.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import resource
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_flow_checkpoints import (  # noqa: E402  (sibling tools, not a package)
    DIT,
    FAMILIES,
    REPO_ROOT,
    flux_vae,
    meta_shapes,
    randomise,
    read_safetensors,
    split_like_neo,
    t5xxl_narrow,
    write_safetensors,
    write_then_check,
)
from make_sd3_checkpoint import PROMPT, assert_live, check_forge_vae, forge_clip, forge_engine, import_forge  # noqa: E402

FLUX_REPO = "black-forest-labs/FLUX.1-dev"
CHROMA_REPO = "Chroma"


def forge_flux_shapes(chroma: bool = False) -> dict:
    """Forge's Flux (or Chroma) transformer as its detection configures every such file (width 3072, 19 + 38 blocks,
    with guidance_in for dev; Chroma's approximator 5120 wide, 5 layers), on the meta device: its tensors' shapes,
    in Forge's (BFL) names."""
    sizes = dict(in_channels=16, vec_in_dim=768, context_in_dim=4096, hidden_size=3072, mlp_ratio=4.0, num_heads=24,
                 depth=19, depth_single_blocks=38, axes_dim=[16, 56, 56], theta=10000, qkv_bias=True)  # fmt: skip
    with torch.device("meta"):
        if chroma:
            from backend.nn.chroma import IntegratedChromaTransformer2DModel

            model = IntegratedChromaTransformer2DModel(
                **sizes, guidance_out_dim=3072, guidance_hidden_dim=5120, guidance_n_layers=5
            )
        else:
            from backend.nn.flux import IntegratedFluxTransformer2DModel

            model = IntegratedFluxTransformer2DModel(**sizes, guidance_embed=True)
    return meta_shapes(model)


def build(forge: str, shared_tools: str, chroma: bool = False) -> dict:
    """Every key Forge's Flux (or Chroma) loader reads, random ones as Rand, the VAE transparent."""
    from backend.nn.vae import IntegratedAutoencoderKL

    repo = CHROMA_REPO if chroma else FLUX_REPO
    sd = {DIT + k: v for k, v in randomise(forge_flux_shapes(chroma), std=0.02).items()}
    if chroma:
        sd.update(t5xxl_narrow(forge, f"{repo}/text_encoder"))
    else:
        sd.update({f"text_encoders.clip_l.{k}": v for k, v in forge_clip(forge, "text_encoder", repo=repo).items()})
        sd.update(t5xxl_narrow(forge, f"{repo}/text_encoder_2"))
    config = IntegratedAutoencoderKL.load_config(os.path.join(forge, "backend", "huggingface", repo, "vae"))
    with torch.device("meta"):
        expected = meta_shapes(IntegratedAutoencoderKL.from_config(config))
    vae = flux_vae(shared_tools)
    assert {k[len("vae.") :]: tuple(v.shape) for k, v in vae.items()} == expected, "not Forge's Flux VAE layout"
    sd.update(vae)
    return sd


def dtype_of(name: str) -> torch.dtype:
    """fp8 for the transformer (Forge then stores it in fp8), fp16 text encoders, fp32 VAE (exactness needs it)."""
    if name.startswith(DIT):
        return torch.float8_e4m3fn
    return torch.float16 if name.startswith("text_encoders.") else torch.float32


def check(path: str, run_transformer: bool, chroma: bool = False) -> None:
    """Split as the host does, load through forge_loader, run the parts (see the module docstring)."""
    from backend import memory_management

    # split_like_neo's expected guess (Chroma: huggingface_guess says Flux schnell; Forge's loader then remaps it)
    FAMILIES.setdefault("flux-dev-forge", ("Flux", FLUX_REPO, "t5xxl"))
    FAMILIES.setdefault("chroma-forge", ("FluxSchnell", "black-forest-labs/FLUX.1-schnell", "t5xxl"))
    torch.manual_seed(0)
    guess, _ = split_like_neo(read_safetensors(path), "chroma-forge" if chroma else "flux-dev-forge")
    assert guess.unet_config["hidden_size"] == 3072 and guess.unet_config["guidance_embed"] != chroma
    with tempfile.TemporaryDirectory() as tmp:
        link = os.path.join(tmp, os.path.basename(path).replace(".partial", ""))
        os.symlink(path, link)
        start = time.time()
        engine = forge_engine(link, expect="Chroma" if chroma else "Flux")
        model = engine.forge_objects.unet.model
        storage = getattr(model.diffusion_model, "storage_dtype", None)
        assert storage == torch.float8_e4m3fn, f"the transformer is held in {storage}, not fp8"
        print(f"  loaded in {time.time() - start:.0f} s, transformer held in {storage}; "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB")  # fmt: skip
        check_forge_vae(engine)
        cond = engine.get_learned_conditioning([PROMPT])
        if chroma:  # T5 only
            cond = {"crossattn": cond}
        context = cond["crossattn"]
        extra = {{"vector": "y"}.get(k, k): v for k, v in cond.items() if k != "crossattn"}
        assert context.shape[0] == 1 and context.shape[2] == 4096
        assert_live("T5-XXL", context)
        if not chroma:
            assert tuple(extra["y"].shape) == (1, 768)
            assert_live("CLIP-L (pooled)", extra["y"])
        print(f"  prompt {PROMPT!r}: context {tuple(context.shape)}, {sorted(extra)}")
        if run_transformer:
            unet = engine.forge_objects.unet
            memory_management.load_model_gpu(unet)
            x = torch.randn(1, 16, 8, 8)
            start = time.time()
            with torch.inference_mode():
                out = unet.model.apply_model(x, torch.tensor([0.7]), c_crossattn=context, **extra)
            assert tuple(out.shape) == (1, 16, 8, 8)
            assert_live("Flux (denoised - x)", out - x)
            print(f"  transformer: one call in {time.time() - start:.0f} s, output std {out.std():.3g}")
        del engine, cond
        memory_management.unload_all_models()
        gc.collect()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--forge", required=True, help="a Forge checkout (dfdcbab6: its loader, Flux engine, configs)")
    ap.add_argument("--out", required=True, help="the checkpoint to write (.safetensors)")
    ap.add_argument("--no-run", action="store_true", help="load and check, but do not run the 12 B transformer")
    ap.add_argument("--chroma", action="store_true", help="Chroma (8.9 B, T5 only) instead of Flux.1 dev")
    ap.add_argument("--shared-tools", default=os.path.join(REPO_ROOT, "..", "shared", "tools"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out, shared = os.path.abspath(a.out), os.path.abspath(a.shared_tools)
    import_forge(os.path.abspath(a.forge))
    sd = build(os.path.abspath(a.forge), shared, a.chroma)
    counts: dict[str, int] = {}
    for k, v in sd.items():
        part = k.split(".")[1] if k.startswith("text_encoders.") else k.split(".")[0]
        counts[part] = counts.get(part, 0) + math.prod(v.shape)
    family = "chroma" if a.chroma else "flux-dev"
    metadata = {"random": family, "host": "forge (fp8 transformer)"}
    write_then_check(
        out,
        lambda path: write_safetensors(path, sd, a.seed, metadata, dtype_of=dtype_of),
        lambda path: check(path, not a.no_run, a.chroma),
    )
    params = ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in counts.items())
    print(f"wrote {out}: {os.path.getsize(out) / 1e9:.2f} GB ({params})")


if __name__ == "__main__":
    main()
