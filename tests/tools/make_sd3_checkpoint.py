#!/usr/bin/env python3
"""Write a tiny random-weight Stable Diffusion 3 checkpoint that AUTOMATIC1111 1.10 or Forge detects, loads and runs.

A1111 takes a file for SD3 when it has ``model.diffusion_model.x_embedder.proj.weight``
(``modules/sd_models_config.py``) and reads the MMDiT's size from the keys (``modules/models/sd3/sd3_impls.py``
BaseModel): depth = x_embedder's width / 64, patch size, positional table, pooled and context widths. So a depth-2
MMDiT (width 128, two heads of 64) loads. It loads on the meta device, so every key of the model must be in the file:
the MMDiT, the text encoders CLIP-L and CLIP-G (``sd3_cond.py`` builds them at full size from fixed configs and
only downloads them when the file lacks them; T5-XXL is off by default and left out) and the VAE (16 channels,
scale 1.5305, shift 0.0609, no quant convs), here the transparent one of the shared tool rebuilt for that layout
(``make_flow_checkpoints.shifted_vae``), so held pixels come back exactly.

Sizes: MMDiT 6.6 M parameters (fp32), CLIP-L 124 M and CLIP-G 695 M (fp16 in the file: A1111 casts them on load),
VAE 84 M (fp32): 2.0 GB. Random values: mean 0, std 0.05 for the MMDiT, 0.02 for the text encoders; norms around 1.

A1111 also loads T5's tokenizer (``google/t5-v1_1-xxl``) for every SD3 model, T5 on or off, and the host is
offline: put a T5 tokenizer into its Hugging Face cache (e.g. Forge Neo's
``backend/huggingface/black-forest-labs/FLUX.1-dev/tokenizer_2``, as ``hub/models--google--t5-v1_1-xxl``).

Forge (``--forge``, commit dfdcbab6) takes a file with ``model.diffusion_model.joint_blocks.0.context_block.attn.qkv.
weight`` for an MMDiT (``repositories/huggingface_guess/huggingface_guess/detection.py``) and reads from the keys:
depth = x_embedder's width / 64 (heads = depth), patch size and input channels (x_embedder), out channels
(final_layer.linear), adm width (y_embedder.mlp.0), context width (context_embedder), positional table (pos_embed),
RMS q/k norms (ln_q); ``model_list.SD3`` matches 16 input channels. The rest is fixed: ``backend/diffusion_engine/
sd35.py`` patches SD3's text encoders to always be clip_l, clip_g and t5xxl, and ``backend/loader.py`` builds every
component from ``backend/huggingface/stabilityai/stable-diffusion-3-medium-diffusers`` and asserts each has a state
dict (``You do not have T5 state dict!``, T5 on or off): T5 must be in the file or picked as a "VAE / Text Encoder"
module. Prefixes: ``model.diffusion_model.`` (``backend/nn/mmditx.py``), ``first_stage_model.`` (ldm names; the
VAE config has scale 1.5305, shift 0.0609, no quant convs, as huggingface_guess's SD3 latent format) and
``text_encoders.{clip_l,clip_g,t5xxl}.`` (``transformer.*``, ``logit_scale``). ``ForgeOperations.Linear``
(``backend/operations.py``) takes a stored weight of any shape, so private widths are stored narrow: CLIP's MLPs 1
wide (attention, norms and tables keep their size: transformers' CLIPAttention views q/k/v by the config's heads),
T5 as ``make_flow_checkpoints.t5xxl_narrow``. The MMDiT is the A1111 file's (6.6 M, 4.7 M of it the shape-checked
192 x 192 positional table). Parameters: CLIP-L 67.0 M, CLIP-G 275.1 M (63 M token table, 210 M attention),
T5 157.3 M (132 M table), fp16 (Forge holds text encoders in fp16 on CPU too); VAE 83.8 M, MMDiT 6.6 M, fp32:
1.36 GB. Forge loads that folder's T5 tokenizer for any SD3 model; its ``add_prefix_space`` makes transformers
convert the slow tokenizer through sentencepiece's protobuf module, which fails with sentencepiece 0.2.3 and
protobuf 4.25 (``runtime_version``): that venv loads no SD3 model at all (the check stops and says so). Fix (host
setup): sentencepiece 0.2.0 (checked here with it first on PYTHONPATH).

Usage (the host's venv):
    python tests/tools/make_sd3_checkpoint.py (--a1111 A1111_DIR | --forge FORGE_DIR)
        --out HOST_DIR/models/Stable-diffusion/random-sd3.safetensors
        [--gain-vae HOST_DIR/models/VAE/gain16-sd3-vae.safetensors] [--shared-tools DIR] [--seed N]
The file is written as OUT.partial, then read back the host's way and each part loaded into the host's own classes
and run: the VAE round trip exact, CLIP-L and CLIP-G (and with Forge T5) on a prompt, the MMDiT on a [1, 16, 8, 8]
latent; outputs finite and not constant. Only then is it renamed into place. With Forge the file is split by the
host's huggingface_guess (SD3, no key left over), then loaded by the host's own ``forge_loader`` (its load messages
fail the check), and the parts run through the engine's text processing, K-model and VAE patcher; the gain VAE (bare
ldm names, which ``replace_state_dict`` puts under ``first_stage_model.``) is loaded as a module of it. Forge: 45 s,
peak RSS 4.3 GB (2 CPU cores).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import math
import os
import re
import sys
import tempfile
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_flow_checkpoints import (  # noqa: E402  (a sibling tool, not a package)
    FAMILIES,
    REPO_ROOT,
    Rand,
    randomise,
    read_safetensors,
    shifted_vae,
    split_like_neo,
    t5xxl_narrow,
    write_safetensors,
    write_then_check,
)

SD3_SCALE, SD3_SHIFT = 1.5305, 0.0609
POS_EMBED_MAX = 192  # SD3 medium's positional table (192 x 192 patches)
SD3_REPO = "stabilityai/stable-diffusion-3-medium-diffusers"  # Forge's bundled configs and tokenizers
FORGE_FLAGS = ["--always-cpu", "--all-in-fp32", "--vae-in-fp32"]  # the Forge test host's (text encoders stay fp16)
PROMPT = "a photo of a cat"


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
    from modules.models.sd3.sd3_impls import SDVAE, BaseModel, SD3LatentFormat

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


def import_forge(forge: str) -> None:
    """Forge's backend importable as its launcher arranges it (``modules/paths.py``: packages_3rdparty for gguf,
    huggingface_guess) with the test host's flags (its args parser reads sys.argv), and Forge's default options
    (the text engines read ``opts.emphasis``, the SD3 engine ``opts.sd3_enable_t5``). Importing the loader applies
    sd35.py's patch of huggingface_guess's SD3 (all three text encoders, the MMDiT as "transformer")."""
    os.chdir(forge)
    sys.path[:0] = [forge, *(os.path.join(forge, d) for d in ("packages_3rdparty", "repositories/huggingface_guess"))]
    sys.argv = [sys.argv[0], *FORGE_FLAGS]
    from modules import options, shared, shared_options

    # before the loader: its text engines bind modules.shared.opts when imported
    shared.opts = options.Options(shared_options.options_templates, shared_options.restricted_opts)
    import backend.loader  # noqa: F401


def forge_repo(forge: str, *path: str, repo: str = SD3_REPO) -> str:
    """A path in one of Forge's bundled repo folders (configs, tokenizers), SD3's by default."""
    return os.path.join(forge, "backend", "huggingface", repo, *path)


def forge_mmdit(depth: int) -> dict:
    """Forge's MMDiTX as detection.py configures it from a file of this depth (width 64 x depth, SD3 medium's other
    sizes), on the meta device: its tensors' shapes."""
    from backend.nn.mmditx import MMDiTX

    hidden = 64 * depth
    model = MMDiTX(
        input_size=None, patch_size=2, in_channels=16, depth=depth, adm_in_channels=2048,
        context_embedder_config={"target": "torch.nn.Linear", "params": {"in_features": 4096, "out_features": hidden}},
        num_patches=POS_EMBED_MAX**2, pos_embed_max_size=POS_EMBED_MAX, pos_embed_scaling_factor=None,
        device="meta", dtype=torch.float32,
    )  # fmt: skip
    return meta_shapes(model)


def forge_clip(forge: str, folder: str, repo: str = SD3_REPO) -> dict:
    """CLIP as Forge's loader builds it (transformers' CLIPTextModel from the bundled config, plus IntegratedCLIP's
    square text_projection and logit_scale), each MLP stored 1 wide: its width is private and ForgeOperations.Linear
    takes the stored shape. Attention, norms and tables stay: CLIPAttention views q/k/v by the config's heads."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig.from_pretrained(forge_repo(forge, folder, repo=repo))
    with torch.device("meta"):
        model = CLIPTextModel(config)
    shapes = {}
    for k, s in meta_shapes(model).items():
        if k.endswith("position_ids"):
            continue
        if k.endswith("mlp.fc1.weight"):
            s = (1, s[1])
        elif k.endswith("mlp.fc1.bias"):
            s = (1,)
        elif k.endswith("mlp.fc2.weight"):
            s = (s[0], 1)
        shapes["transformer." + k] = s
    shapes["transformer.text_projection.weight"] = (config.hidden_size, config.hidden_size)
    sd = randomise(shapes)
    sd["logit_scale"] = torch.tensor(4.6055)
    return sd


def build_forge(forge: str, depth: int, shared_tools: str) -> dict:
    """Every key Forge's SD3 loader reads, random ones as Rand, the VAE transparent."""
    from backend.nn.vae import IntegratedAutoencoderKL

    sd = {}
    for k, shape in randomise(forge_mmdit(depth), std=0.05).items():
        sd["model.diffusion_model." + k] = shape
    for name, folder in (("clip_l", "text_encoder"), ("clip_g", "text_encoder_2")):
        sd.update({f"text_encoders.{name}.{k}": v for k, v in forge_clip(forge, folder).items()})
    sd.update(t5xxl_narrow(forge, f"{SD3_REPO}/text_encoder_3"))
    config = IntegratedAutoencoderKL.load_config(forge_repo(forge, "vae"))
    assert (config["latent_channels"], config["scaling_factor"], config["shift_factor"]) == (16, SD3_SCALE, SD3_SHIFT)
    with torch.device("meta"):
        expected = meta_shapes(IntegratedAutoencoderKL.from_config(config))
    vae = shifted_vae(shared_tools, SD3_SCALE, SD3_SHIFT)
    assert {k: tuple(v.shape) for k, v in vae.items()} == expected, "the transparent VAE is not Forge's SD3 layout"
    sd.update({"first_stage_model." + k: v for k, v in vae.items()})
    return sd


def forge_engine(path: str, modules: list | None = None, expect: str = "StableDiffusion3") -> Any:
    """The host's ``forge_loader`` on the file (and module files), as the WebUI calls it; the load messages it only
    prints (``Missing:``/``Unexpected:``, ``backend/state_dict.py``) fail the check, and every Forge Linear must
    have its weight."""
    from backend.loader import forge_loader
    from backend.operations import ForgeOperations

    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            engine = forge_loader(path, additional_state_dicts=modules)
    except ImportError as e:
        if "runtime_version" not in str(e):
            raise
        import google.protobuf
        import sentencepiece

        raise SystemExit(
            f"Forge cannot load any SD3 model in this venv: backend/loader.py loads tokenizer_3 (T5TokenizerFast) for "
            f"every SD3 file, its bundled tokenizer_config.json sets add_prefix_space, so transformers converts the "
            f"slow tokenizer and imports sentencepiece {sentencepiece.__version__}'s protobuf module, which needs a "
            f"newer protobuf than the venv's {google.protobuf.__version__} ({e}). Fix (host setup): pip install "
            f"sentencepiece==0.2.0 in the host's venv (or put it first on PYTHONPATH for this check)."
        ) from e
    finally:
        print("    " + log.getvalue().strip().replace("\n", "\n    "))
    assert type(engine).__name__ == expect, type(engine)
    assert not re.search(r"(Missing|Unexpected): ", log.getvalue()), "the host did not load every key"
    objects = engine.forge_objects
    for part in (objects.unet.model, objects.clip.cond_stage_model, objects.vae.first_stage_model):
        empty = [n for n, m in part.named_modules() if isinstance(m, ForgeOperations.Linear) and m.weight is None]
        assert not empty, f"Linears without weights: {empty[:5]}"
    return engine


def check_forge_vae(engine: Any, gain: float = 1.0) -> None:
    """The engine's own encode/decode (VAE patcher, process_in/out): the scaled latent of 8x8 blocks is gain x their
    mean, and the decoded image, truncated to uint8 as the WebUI saves it, is the input."""
    blocks = torch.randint(0, 256, (1, 3, 8, 8)).float().repeat_interleave(8, 2).repeat_interleave(8, 3)
    x = blocks / 127.5 - 1
    with torch.inference_mode():
        latent = engine.encode_first_stage(x)
        back = engine.decode_first_stage(latent)
    mean = torch.nn.functional.avg_pool2d(x, 8)
    assert (latent[:, :3] / gain - mean).abs().max() < 1e-4 and latent[:, 3:].abs().max() < 1e-4, "latent != mean"
    levels = (255.0 * ((back + 1) / 2).clamp(0, 1)).to(torch.uint8).float()
    assert torch.equal(levels, blocks), f"VAE round trip: {(levels != blocks).sum()} levels off"
    print(f"  VAE (gain {gain:g}): latent {tuple(latent.shape)} = gain x block mean, round trip exact")


def check_forge(path: str, depth: int, gain_vae: str | None) -> None:
    """Split the file as the host does (huggingface_guess names SD3, no key left over), load it through the host's
    forge_loader and run the engine: conditioning with T5 on (each encoder's slice live), the K-model (flow, shift 3)
    on a [1, 16, 8, 8] latent, the VAE round trip; then the gain VAE as a module."""
    from backend import memory_management
    from modules import shared

    FAMILIES.setdefault("sd3", ("SD3", SD3_REPO, "t5xxl"))  # split_like_neo's table of expected guesses
    torch.manual_seed(0)
    guess, _ = split_like_neo(read_safetensors(path), "sd3")
    assert guess.unet_config["depth"] == depth and guess.unet_config["pos_embed_max_size"] == POS_EMBED_MAX
    with tempfile.TemporaryDirectory() as tmp:
        link = os.path.join(tmp, "random-sd3.safetensors")  # the loader reads safetensors by the name's extension
        os.symlink(path, link)
        engine = forge_engine(link)
        check_forge_vae(engine)
        shared.opts.data["sd3_enable_t5"] = True  # off by default (T5's part of the context is then zeros)
        cond = engine.get_learned_conditioning([PROMPT])
        context, vector = cond["crossattn"], cond["vector"]
        assert tuple(context.shape) == (1, 77 + 256, 4096) and tuple(vector.shape) == (1, 2048)
        ids = engine.text_processing_engine_l.tokenize([PROMPT])[0]
        print(f"  prompt {PROMPT!r}: {len(ids)} CLIP tokens (host tokenizer), context {tuple(context.shape)}")
        assert_live("CLIP-L (hidden)", context[:, :77, :768])
        assert_live("CLIP-L (pooled)", vector[:, :768])
        assert_live("CLIP-G (hidden)", context[:, :77, 768:2048])
        assert_live("CLIP-G (pooled, projected)", vector[:, 768:])
        assert_live("T5-XXL", context[:, 77:])
        unet = engine.forge_objects.unet
        memory_management.load_model_gpu(unet)
        x = torch.randn(1, 16, 8, 8)
        with torch.inference_mode():
            out = unet.model.apply_model(x, torch.tensor([0.7]), c_crossattn=context, y=vector)
        assert tuple(out.shape) == (1, 16, 8, 8)
        assert_live("MMDiT (denoised - x)", out - x)
        del engine, cond, unet
        memory_management.unload_all_models()  # as sd_models.forge_model_reload drops a model before the next
        gc.collect()
        if gain_vae:
            check_forge_vae(forge_engine(link, [gain_vae]), gain=16.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    host = ap.add_mutually_exclusive_group(required=True)
    host.add_argument("--a1111", help="an AUTOMATIC1111 1.10 checkout (its SD3 classes)")
    host.add_argument("--forge", help="a Forge checkout (dfdcbab6: its loader, SD3 engine and bundled configs)")
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
    forge = os.path.abspath(a.forge) if a.forge else None
    if forge:
        import_forge(forge)
    else:
        import_a1111(os.path.abspath(a.a1111))
    if gain_vae:  # bare ldm names: A1111's VAE files and Forge's modules (replace_state_dict) alike
        from safetensors.torch import save_file

        vae = {k: v.contiguous() for k, v in shifted_vae(shared, SD3_SCALE, SD3_SHIFT, 16.0).items()}
        save_file(vae, gain_vae, metadata={"transparent_vae": "SD3 layout, 16 channels, gain 16"})
        print(f"wrote {gain_vae}: {len(vae)} tensors")
    sd = build_forge(forge, a.depth, shared) if forge else build(a.depth, shared)
    counts = {}
    for k, v in sd.items():
        part = k.split(".")[1] if k.startswith("text_encoders.") else k.split(".")[0]
        counts[part] = counts.get(part, 0) + math.prod(v.shape)
    metadata = {"random": "sd3", "host": "forge (narrow Linears)"} if forge else {"random": "sd3"}
    write_then_check(
        out,
        lambda path: write_safetensors(path, sd, a.seed, metadata, half=("text_encoders.",)),
        lambda path: check_forge(path, a.depth, gain_vae) if forge else check(path, a.depth),
    )
    params = ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in counts.items())
    print(f"wrote {out}: {os.path.getsize(out) / 1e9:.2f} GB ({params})")


if __name__ == "__main__":
    main()
