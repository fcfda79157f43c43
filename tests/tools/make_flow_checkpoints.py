#!/usr/bin/env python3
"""Write tiny random-weight flow-model checkpoints (Flux.1 dev and schnell) that Forge Neo loads and runs in seconds.

Forge Neo builds every component from fixed configs but reads the Flux.1 transformer's width and block counts from
the keys (``huggingface_guess/detection.py``: hidden size from ``img_in``, depth from ``double_blocks.N``), so a
width-128, 1+1-block Flux loads as "Flux" (dev: with ``guidance_in``; schnell: without). Its text encoders are
mandatory and built from fixed configs: CLIP-L is written full size; T5-XXL keeps its 24 layers, 64 heads, 4096
width and vocabulary (all shape-checked) but its attention and feed-forward Linears are stored narrow (q/k/v at one
dimension per head, the gated MLP at width 1): Neo's Linear takes the stored tensor as is and its attention derives
the head size from q's width (``backend/operations.py`` ForgeOperations.Linear, ``backend/attention.py``), so the
file is 0.6 GB instead of 19 GB. The VAE is the transparent one (8x8 mean pool / nearest upsampling, built by the
shared tool) for Flux's 16-channel latent with its scale 0.3611 and shift 0.1159 and without quant convs: a pixel
block's scaled latent is its mean in [-1, 1] on channels 0-2 and 0 elsewhere, so held pixels come back exactly.

Key layout: the single-file layout Neo reads (``backend/loader.py``, ``huggingface_guess/model_list.py``):
``model.diffusion_model.*`` (BFL names, QK norms as ``.scale``), ``vae.*`` (ldm names), ``text_encoders.clip_l.
transformer.*`` and ``text_encoders.t5xxl.transformer.*``. Keep "kontext" and "edit" out of the output path: Neo
reads model variants from the path.

Usage (Forge Neo's venv, from anywhere):
    python tests/tools/make_flow_checkpoints.py --neo /work/hosts/neo/webui --out DIR flux-dev flux-schnell
        [--shared-tools DIR] [--seed N]
Writes DIR/random-<family>.safetensors (fp32). Before saving, each file is loaded into Neo's own classes and run
once (transformer forward, text encoders, VAE round trip) and must give finite outputs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import torch
from safetensors.torch import save_file

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FLUX_SCALE, FLUX_SHIFT = 0.3611, 0.1159
FAMILIES = ("flux-dev", "flux-schnell")
FLUX_CONFIGS = "backend/huggingface/black-forest-labs/FLUX.1-dev"


def import_neo(neo: str) -> None:
    """Make Neo's ``backend`` importable (its args parser reads sys.argv: give it --cpu)."""
    os.chdir(neo)
    sys.path[:0] = [neo, os.path.join(neo, "modules_forge", "packages")]
    sys.argv = [sys.argv[0], "--cpu"]


def randomise(shapes: dict, gen: torch.Generator, std: float = 0.02) -> dict:
    """Random weights of the given shapes: norms and scales around 1, biases and everything else small."""
    out = {}
    for name, shape in shapes.items():
        if name.endswith((".scale", "norm.weight", "layer_norm.weight", "norm1.weight", "norm2.weight")) or (
            "norm" in name and name.endswith(".weight") and len(shape) == 1
        ):
            out[name] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            out[name] = std * torch.randn(shape, generator=gen)
    return out


def meta_shapes(module: torch.nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def flux_transformer(guidance: bool, gen: torch.Generator) -> dict:
    """Width 128 (one head of 128 = 16+56+56 rope dims), one double and one single block, 16-channel latents."""
    from backend.nn.flux import IntegratedFluxTransformer2DModel

    with torch.device("meta"):
        model = IntegratedFluxTransformer2DModel(
            in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096, hidden_size=128, mlp_ratio=4.0,
            num_heads=1, depth=1, depth_single_blocks=1, axes_dim=[16, 56, 56], theta=10000, patch_size=2,
            qkv_bias=True, guidance_embed=guidance,
        )  # fmt: skip
    sd = randomise(meta_shapes(model), gen, std=0.05)
    renamed = {}
    for k, v in sd.items():
        # BFL's single-file names: the QK RMSNorms are ".scale" (Neo's detection keys on them)
        if k.endswith(("query_norm.weight", "key_norm.weight")):
            k = k[: -len("weight")] + "scale"
        renamed["model.diffusion_model." + k] = v
    return renamed


def clip_l(neo: str, gen: torch.Generator) -> dict:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig.from_pretrained(
        os.path.join(neo, "backend/huggingface/black-forest-labs/FLUX.1-dev/text_encoder")
    )
    with torch.device("meta"):
        model = CLIPTextModel(config)
    shapes = meta_shapes(model)
    shapes["text_projection.weight"] = (config.hidden_size, config.hidden_size)
    sd = randomise({k: s for k, s in shapes.items() if not k.endswith("position_ids")}, gen)
    sd["text_model.embeddings.position_ids"] = torch.arange(config.max_position_embeddings)[None].float()
    return {"text_encoders.clip_l.transformer." + k: v for k, v in sd.items() if not k.endswith("position_ids")}


def t5xxl_narrow(neo: str, gen: torch.Generator) -> dict:
    """T5-XXL's shape-checked tensors at full size (embedding, norms, relative attention bias), its Linears narrow."""
    import json

    from backend.nn.t5 import IntegratedT5

    with open(os.path.join(neo, FLUX_CONFIGS, "text_encoder_2", "config.json")) as f:
        config = json.load(f)
    with torch.device("meta"):
        model = IntegratedT5(config)
    heads = config["num_heads"]
    shapes = {}
    for k, s in meta_shapes(model).items():
        if k == "logit_scale":
            continue
        if k.endswith(("SelfAttention.q.weight", "SelfAttention.k.weight", "SelfAttention.v.weight")):
            s = (heads, s[1])  # one dimension per head
        elif k.endswith("SelfAttention.o.weight"):
            s = (s[0], heads)
        elif k.endswith(("wi_0.weight", "wi_1.weight")):
            s = (1, s[1])
        elif k.endswith("wo.weight"):
            s = (s[0], 1)
        shapes[k] = s
    sd = randomise(shapes, gen, std=0.05)
    sd["transformer.shared.weight"] = torch.randn(shapes["transformer.shared.weight"], generator=gen)
    return {"text_encoders.t5xxl." + k: v for k, v in sd.items()}


def flux_vae(shared_tools: str) -> dict:
    """The shared transparent VAE rebuilt for 16 latent channels, scale 0.3611 and shift 0.1159, no quant convs.

    Neo scales as s = (raw - shift) * scale (process_in) and back as raw = s / scale + shift (process_out), so the
    encoder writes raw = mean / scale + shift on channels 0-2 (shift elsewhere: s = 0) and the decoder's first conv
    reads s = (raw - shift) * scale."""
    path = os.path.join(shared_tools, "make_transparent_vae.py")
    spec = importlib.util.spec_from_file_location("shared_make_transparent_vae", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.Z, mod.SCALE = 16, FLUX_SCALE
    sd = mod.build()
    z = mod.Z
    sd["encoder.conv_out.bias"][:z] += FLUX_SHIFT  # raw latent = s / scale + shift (logvar channels untouched)
    w, b = sd["decoder.conv_in.weight"], sd["decoder.conv_in.bias"]
    for c in range(3):  # +s channel 4c reads scale * raw, -s channel 4c+1 reads -scale * raw: remove the shift
        b[4 * c] -= FLUX_SHIFT * FLUX_SCALE
        b[4 * c + 1] += FLUX_SHIFT * FLUX_SCALE
    assert w[4 * 0, 0, 1, 1] == FLUX_SCALE
    for k in ("quant_conv.weight", "quant_conv.bias", "post_quant_conv.weight", "post_quant_conv.bias"):
        del sd[k]
    return {"vae." + k: v for k, v in sd.items()}


def check(neo: str, sd: dict, guidance: bool) -> None:
    """Load each part into Neo's own classes (strict) and run it once: outputs finite, VAE round trip exact."""
    import json

    from backend.nn.flux import IntegratedFluxTransformer2DModel
    from backend.nn.t5 import IntegratedT5
    from backend.nn.vae import IntegratedAutoencoderKL

    def part(prefix: str) -> dict:
        return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}

    vae_dir = os.path.join(neo, FLUX_CONFIGS, "vae")
    vae = IntegratedAutoencoderKL.from_config(IntegratedAutoencoderKL.load_config(vae_dir))
    vae.load_state_dict(part("vae."), strict=True)
    img = torch.randint(0, 256, (1, 3, 8, 8)).float().repeat_interleave(8, 2).repeat_interleave(8, 3)
    x = img / 127.5 - 1
    with torch.no_grad():
        s = vae.process_in(vae.encode(x))
        back = vae.decode(vae.process_out(s))
    mean = torch.nn.functional.avg_pool2d(x, 8)
    assert (s[:, :3] - mean).abs().max() < 1e-4 and s[:, 3:].abs().max() < 1e-4, "VAE latent is not the block mean"
    levels = (255.0 * ((back + 1) / 2).clamp(0, 1)).to(torch.uint8).float()  # the WebUI's truncation
    assert torch.equal(levels, img), "VAE round trip is not exact"

    model = IntegratedFluxTransformer2DModel(
        in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096, hidden_size=128, mlp_ratio=4.0,
        num_heads=1, depth=1, depth_single_blocks=1, axes_dim=[16, 56, 56], theta=10000, patch_size=2,
        qkv_bias=True, guidance_embed=guidance,
    )  # fmt: skip
    dit = {
        (k[: -len("scale")] + "weight" if k.endswith(("query_norm.scale", "key_norm.scale")) else k): v
        for k, v in part("model.diffusion_model.").items()
    }
    model.load_state_dict(dit, strict=True)
    with torch.no_grad():
        out = model(
            torch.randn(1, 16, 8, 8), torch.tensor([0.5]), context=torch.randn(1, 4, 4096), y=torch.randn(1, 768),
            guidance=torch.tensor([3.5]) if guidance else None,
        )  # fmt: skip
    assert out.shape == (1, 16, 8, 8) and torch.isfinite(out).all(), "transformer output not finite"

    from backend.operations import using_forge_operations

    with open(os.path.join(neo, FLUX_CONFIGS, "text_encoder_2", "config.json")) as f:
        config = json.load(f)
    with using_forge_operations(device=torch.device("cpu"), dtype=torch.float32, manual_cast_enabled=False):
        t5 = IntegratedT5(config)  # Neo's Linear takes the narrow tensors as they are, as the host does
    missing, unexpected = t5.load_state_dict(part("text_encoders.t5xxl."), strict=False)
    assert not unexpected and set(missing) <= {"logit_scale"}, (missing, unexpected)
    with torch.no_grad():
        h = t5.transformer(torch.tensor([[3, 9, 1712, 1]]))
    assert h.shape == (1, 4, 4096) and torch.isfinite(h).all() and h.std() > 0, "T5 output not finite"
    print(f"  check: VAE exact ({tuple(s.shape)} latent), transformer finite, {len(sd)} tensors")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("families", nargs="+", choices=FAMILIES)
    ap.add_argument("--neo", required=True, help="Forge Neo checkout (its backend and bundled configs)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--shared-tools", default=os.path.join(REPO_ROOT, "..", "shared", "tools"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    shared = os.path.abspath(a.shared_tools)
    import_neo(os.path.abspath(a.neo))
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(a.seed)
    common = {**clip_l(a.neo, gen), **t5xxl_narrow(a.neo, gen), **flux_vae(shared)}
    for family in a.families:
        guidance = family == "flux-dev"
        sd = {**flux_transformer(guidance, gen), **common}
        check(a.neo, sd, guidance)
        path = os.path.join(out, f"random-{family}.safetensors")
        save_file({k: v.float().contiguous() for k, v in sd.items()}, path, metadata={"random": family})
        print(f"wrote {path}: {sum(v.numel() for v in sd.values()) / 1e6:.1f} M parameters")


if __name__ == "__main__":
    main()
