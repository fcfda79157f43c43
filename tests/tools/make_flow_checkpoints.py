#!/usr/bin/env python3
"""Write tiny random-weight flow-model checkpoints that Forge Neo detects, loads and runs in seconds: Flux.1 dev and
schnell, Chroma, Z-Image (Turbo) and Lumina 2 (Neta-Lumina).

Forge Neo builds every component from the fixed configs in ``backend/huggingface/<repo>``, reads only a few sizes
from the keys (``huggingface_guess/detection.py``) and needs every component in the file (``backend/loader.py``).
What keeps the files small is how it loads a Linear: ``ForgeOperations.Linear`` (``backend/operations.py``) takes
the stored tensor as it is, with no shape check, while convs, norms and embedding tables are shape-checked. So a
Linear whose width is private to an MLP, or whose output is chunked by a size taken from the tensor (modulation
vectors, which then broadcast), is stored narrow; a width pinned by a norm, an embedding table, a
``view(..., heads, head_dim)`` or a ``torch.split`` with config sizes stays. Per family (fp32 file sizes):

* flux-dev, flux-schnell (1.5 GB): Neo reads Flux's width and depth from the keys: width 128 (one head of
  16+56+56 rope dims), one double and one single block, dev with ``guidance_in``. CLIP-L full size, T5-XXL narrow
  (below).
* chroma (0.97 GB): the same 128-wide Flux body (no modulation Linears in Chroma's blocks), driven by Chroma's
  approximator, which Neo fixes at 5120 wide (five shape-checked RMSNorm(5120)): its MLPs are stored 16 wide and its
  output, the modulation vectors, 1 wide. T5-XXL narrow.
* z-image (6.7 GB): Neo takes a Lumina-2-layout model for Z-Image only at width 3840 (30 heads of 128) and reads the
  caption width (2560, Qwen3-4B's) from the keys. The main layers are counted from the keys (0 here), but NextDiT
  always has 2 noise and 2 context refiner blocks whose attention (qkv 3 x 3840, out 3840) is fixed: 0.25 B
  parameters. Text encoder Qwen3-4B, 1.33 B parameters (5.3 GB). With the pad tokens, as the real model.
* lumina2 (4.4 GB): only at width 2304 (24 heads of 96, 8 kv heads), caption width 2304 (Gemma2-2B's); 0 main
  layers, the 4 refiner blocks: 63 M parameters. Text encoder Gemma2-2B, 0.96 B parameters (3.8 GB).
The text encoders keep what Neo's classes pin: T5-XXL its 24 layers, 64 heads, 4096 width and vocabulary, but q/k/v
are stored one dimension per head and the gated MLP 1 wide (its attention takes the head size from q's width,
``backend/attention.py``): 157 M parameters, most of them the embedding table. The LLMs (``backend/nn/llm/llama.py``)
keep their layer count, width and vocabulary (the config is asserted, the table and norms shape-checked) and their
attention (``view(B, L, heads, head_dim)``, q/k norms over head_dim); only their MLPs are stored 1 wide. So Z-Image
and Lumina 2 pass 4 GB in fp32; with transformer and text encoder in bf16 (the VAE stays fp32: its exactness needs
it) they would be 3.5 and 2.4 GB, for a host that runs them in bf16 (run with --fp32-unet --fp32-text-enc, Neo
copies them to fp32 on load). Random values: mean 0, std 0.02 (the 128-wide Flux/Chroma bodies and T5 0.05, T5's
table 1); norms around 1; the LLM tables with mean 0.02, so that the "Original" emphasis, which rescales the
embeddings by a mean ratio, keeps its sign.

Every file has the transparent VAE (8x8 mean pool / nearest upsampling, built by the shared tool) for the Flux VAE
that all of them use (their ``vae/config.json``: 16 channels, scale 0.3611, shift 0.1159, no quant convs): a pixel
block's scaled latent is its mean in [-1, 1] on channels 0-2 and 0 elsewhere, so held pixels come back exactly.

Key layout: the single-file layout Neo reads (``huggingface_guess/model_list.py``): ``model.diffusion_model.*``
(BFL names for Flux and Chroma, their QK and approximator norms as ``.scale``), ``vae.*`` (ldm names) and
``text_encoders.clip_l.transformer.*``, ``text_encoders.t5xxl.transformer.*``, ``text_encoders.qwen3_4b.transformer.*``
or ``text_encoders.gemma2_2b.transformer.*``. Keep "kontext" and "edit" out of the output path: Neo reads model
variants from the path.

Usage (Forge Neo's venv, from anywhere):
    python tests/tools/make_flow_checkpoints.py --neo /work/hosts/neo/webui --out DIR
        [--shared-tools DIR] [--seed N] flux-dev flux-schnell chroma z-image lumina2
Writes DIR/random-<family>.safetensors in fp32 (the Neo host runs --fp32-unet --fp32-vae --fp32-text-enc). The
tensors are streamed to DIR/random-<family>.safetensors.partial, the random ones drawn in chunks from the seed and
the tensor's name, so no model sits in memory; that file is then read the host's way (mmapped, split by Neo's own
``huggingface_guess.guess``, which must name the family's model) and each part is loaded into Neo's own class and
run once: the VAE round trip exact, the text encoder on a prompt from the host's tokenizer, the transformer on a
[1, 16, 8, 8] latent with that context, outputs finite and not constant. Only then is the file renamed into place.
Peak memory: 2 GB (Flux, Chroma), 3 GB (lumina2), 5.2 GB (z-image: its check reads Qwen3's 3.8 GB of Linears,
mmapped). Chroma: Neo's backend/huggingface/Chroma/tokenizer has no tokenizer.json, so the host cannot encode a
Chroma prompt until FLUX.1-dev's tokenizer_2/tokenizer.json is copied there (the check says so and goes on with
fixed token ids).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import resource
import struct
import sys
import zlib
from collections.abc import Callable
from typing import NamedTuple

import torch

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FLUX_SCALE, FLUX_SHIFT = 0.3611, 0.1159
NARROW = 16  # the stored width of the transformers' MLP and approximator Linears (the text encoders' MLPs: 1)
CHUNK = 1 << 24  # random values drawn and written per step (64 MB in fp32)
DIT = "model.diffusion_model."
# family: (the huggingface_guess model_list class Neo must detect, Neo's repo folder, the conditioning text encoder)
FAMILIES = {
    "flux-dev": ("Flux", "black-forest-labs/FLUX.1-dev", "t5xxl"),
    "flux-schnell": ("FluxSchnell", "black-forest-labs/FLUX.1-schnell", "t5xxl"),
    "chroma": ("Chroma", "Chroma", "t5xxl"),
    "z-image": ("ZImage", "Tongyi-MAI/Z-Image-Turbo", "qwen3_4b"),
    "lumina2": ("Lumina2", "neta-art/Neta-Lumina", "gemma2_2b"),
}
QWEN3_TEMPLATE = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"  # backend/text_processing/qwen3_engine.py


class Rand(NamedTuple):
    """A random tensor, drawn only when the file is written: mean + std * N(0, 1)."""

    shape: tuple
    std: float
    mean: float = 0.0


def import_neo(neo: str) -> None:
    """Make Neo's ``backend`` and ``huggingface_guess`` importable (its args parser reads sys.argv: give it --cpu)."""
    os.chdir(neo)
    sys.path[:0] = [neo, os.path.join(neo, "modules_forge", "packages")]
    sys.argv = [sys.argv[0], "--cpu"]


def hf(neo: str, *path: str) -> str:
    return os.path.join(neo, "backend", "huggingface", *path)


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def randomise(shapes: dict, std: float = 0.02) -> dict:
    """Random tensors of the given shapes: norms and scales around 1, biases and everything else small."""
    out = {}
    for name, shape in shapes.items():
        if name.endswith((".scale", "norm.weight", "layer_norm.weight", "norm1.weight", "norm2.weight")) or (
            "norm" in name and name.endswith(".weight") and len(shape) == 1
        ):
            out[name] = Rand(shape, 0.1, 1.0)
        else:
            out[name] = Rand(shape, std)
    return out


def meta_shapes(module: torch.nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def bfl_names(sd: dict) -> dict:
    """BFL's single-file names: RMSNorms as ".scale" (Neo's detection keys on the QK and approximator norms)."""
    out = {}
    for k, v in sd.items():
        if k.endswith(("query_norm.weight", "key_norm.weight")) or k.startswith("distilled_guidance_layer.norms."):
            k = k[: -len("weight")] + "scale"
        out[DIT + k] = v
    return out


def flux_transformer(guidance: bool) -> dict:
    """Width 128 (one head of 128 = 16+56+56 rope dims), one double and one single block, 16-channel latents: Neo
    reads the width from img_in and the depths from the block keys."""
    from backend.nn.flux import IntegratedFluxTransformer2DModel

    with torch.device("meta"):
        model = IntegratedFluxTransformer2DModel(
            in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096, hidden_size=128, mlp_ratio=4.0,
            num_heads=1, depth=1, depth_single_blocks=1, axes_dim=[16, 56, 56], theta=10000, patch_size=2,
            qkv_bias=True, guidance_embed=guidance,
        )  # fmt: skip
    return bfl_names(randomise(meta_shapes(model), std=0.05))


def chroma_transformer() -> dict:
    """Flux's width-128 1+1-block body, driven by Chroma's approximator (``backend/nn/chroma.py``).

    Neo fixes the approximator (in 64, hidden 5120, 5 layers, ``detection.py``); its five RMSNorm(5120) are
    shape-checked, so in_proj keeps 5120 outputs, but each layer's MLP width is private (stored 16 wide) and out_proj
    gives the 344 modulation vectors, which broadcast over the width when 1 wide (3072 in the config). The blocks
    have no modulation Linears of their own."""
    from backend.nn.chroma import IntegratedChromaTransformer2DModel

    with torch.device("meta"):
        model = IntegratedChromaTransformer2DModel(
            in_channels=64, out_channels=64, context_in_dim=4096, hidden_size=128, mlp_ratio=4.0, num_heads=1,
            depth=1, depth_single_blocks=1, axes_dim=[16, 56, 56], theta=10000, patch_size=2, qkv_bias=True,
            in_dim=64, out_dim=3072, hidden_dim=5120, n_layers=5, txt_ids_dims=[], vec_in_dim=None,
        )  # fmt: skip
    shapes = {}
    for k, s in meta_shapes(model).items():
        if k.startswith("distilled_guidance_layer.layers.") and ".in_layer." in k:
            s = (NARROW,) + s[1:]
        elif k.startswith("distilled_guidance_layer.layers.") and k.endswith(".out_layer.weight"):
            s = (s[0], NARROW)
        elif k.startswith("distilled_guidance_layer.out_proj."):
            s = (1,) + s[1:]
        shapes[k] = s
    return bfl_names(randomise(shapes, std=0.05))


def nextdit_narrow(model: torch.nn.Module) -> dict:
    """A meta NextDiT's tensors (``backend/nn/lumina.py``) with the Linears Neo does not pin stored narrow.

    Narrow: the FFNs' and the timestep MLP's inner width (private), adaLN_modulation (chunked into 4 per block, one
    scale for the final layer: [B, 1] pieces broadcast over the width). Kept: x_embedder, cap_embedder (Neo reads
    width and caption width from it), attention qkv (``torch.split`` with config sizes, then ``view`` by head) and out,
    the RMSNorms, final_layer.linear (the patch's pixels), the timestep embedding's width (the adaLN input)."""
    shapes = {}
    for k, s in meta_shapes(model).items():
        if k.endswith(("feed_forward.w1.weight", "feed_forward.w3.weight")) or k == "t_embedder.mlp.0.weight":
            s = (NARROW, s[1])
        elif k.endswith("feed_forward.w2.weight") or k == "t_embedder.mlp.2.weight":
            s = (s[0], NARROW)
        elif k == "t_embedder.mlp.0.bias":
            s = (NARROW,)
        elif ".adaLN_modulation." in k:
            s = (1 if k.startswith("final_layer.") else 4,) + s[1:]
        shapes[k] = s
    sd = randomise(shapes)
    sd["cap_embedder.0.weight"] = Rand(shapes["cap_embedder.0.weight"], 0.1, 1.0)  # an RMSNorm
    return {DIT + k: v for k, v in sd.items()}


def z_image_transformer() -> dict:
    """Z-Image as Neo detects it (``detection.py``: width 3840 is the only one that gives ``ZImage``; 30 heads of
    128, rope axes 32+48+48; ``cap_pad_token`` present: pad to multiples of 32), 0 main layers, caption width 2560."""
    from backend.nn.lumina import NextDiT

    with torch.device("meta"):
        model = NextDiT(
            patch_size=2, in_channels=16, dim=3840, n_layers=0, n_heads=30, n_kv_heads=30, qk_norm=True,
            cap_feat_dim=2560, axes_dims=[32, 48, 48], axes_lens=[1536, 512, 512], rope_theta=256.0,
            ffn_dim_multiplier=8.0 / 3.0, z_image_modulation=True, time_scale=1000.0, pad_tokens_multiple=32,
        )  # fmt: skip
    return nextdit_narrow(model)


def lumina2_transformer() -> dict:
    """Lumina 2 as Neo detects it (width 2304 is the only one that gives ``Lumina2``; 24 heads of 96, 8 kv heads, rope
    axes 32+32+32; no ``clip_text_pooled_proj``: not NewBie), 0 main layers, caption width 2304."""
    from backend.nn.lumina import NextDiT

    with torch.device("meta"):
        model = NextDiT(
            patch_size=2, in_channels=16, dim=2304, n_layers=0, n_heads=24, n_kv_heads=8, qk_norm=True,
            cap_feat_dim=2304, axes_dims=[32, 32, 32], axes_lens=[300, 512, 512], rope_theta=10000.0,
            ffn_dim_multiplier=4.0,
        )  # fmt: skip
    return nextdit_narrow(model)


def clip_l(neo: str) -> dict:
    """CLIP-L full size (Flux's pooled vector; small next to the rest)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig.from_pretrained(hf(neo, FAMILIES["flux-dev"][1], "text_encoder"))
    with torch.device("meta"):
        model = CLIPTextModel(config)
    shapes = {k: s for k, s in meta_shapes(model).items() if not k.endswith("position_ids")}
    shapes["text_projection.weight"] = (config.hidden_size, config.hidden_size)
    return {"text_encoders.clip_l.transformer." + k: v for k, v in randomise(shapes).items()}


def t5xxl_narrow(neo: str, config_dir: str) -> dict:
    """T5-XXL's shape-checked tensors at full size (embedding, norms, relative attention bias), its Linears narrow:
    q/k/v one dimension per head (the attention takes the head size from q's width), the gated MLP 1 wide."""
    from backend.nn.t5 import IntegratedT5

    config = read_json(hf(neo, config_dir, "config.json"))
    with torch.device("meta"):
        model = IntegratedT5(config)
    heads = config["num_heads"]
    shapes = {}
    for k, s in meta_shapes(model).items():
        if k == "logit_scale":
            continue
        if k.endswith(("SelfAttention.q.weight", "SelfAttention.k.weight", "SelfAttention.v.weight")):
            s = (heads, s[1])
        elif k.endswith("SelfAttention.o.weight"):
            s = (s[0], heads)
        elif k.endswith(("wi_0.weight", "wi_1.weight")):
            s = (1, s[1])
        elif k.endswith("wo.weight"):
            s = (s[0], 1)
        shapes[k] = s
    sd = randomise(shapes, std=0.05)
    sd["transformer.shared.weight"] = Rand(shapes["transformer.shared.weight"], 1.0)
    return {"text_encoders.t5xxl." + k: v for k, v in sd.items()}


def llm_narrow(neo: str, cls_name: str, config_dir: str, prefix: str) -> dict:
    """An LLM text encoder of ``backend/nn/llm/llama.py`` with its MLPs 1 wide and all else at config size.

    The class asserts config.json's sizes (layers, width, heads, vocabulary), the embedding table and RMSNorms are
    shape-checked and the attention views q/k/v as (heads, head_dim) with q/k norms over head_dim, so only the MLP
    (gate/up/down: a private width) can shrink. Built on the meta device under Neo's operations (its RMSNorm takes
    Gemma's ``add``; its Linear allocates nothing, so their shapes come from in/out_features: no biases here)."""
    from backend.nn.llm import llama
    from backend.operations import ForgeOperations, using_forge_operations

    with using_forge_operations(device=torch.device("meta"), dtype=torch.float32):
        model = getattr(llama, cls_name)(read_json(hf(neo, config_dir, "config.json")))
    assert not model.model.config.qkv_bias
    shapes = meta_shapes(model)
    for name, m in model.named_modules():
        if isinstance(m, ForgeOperations.Linear):
            if name.endswith(("mlp.gate_proj", "mlp.up_proj")):
                shapes[name + ".weight"] = (1, m.in_features)
            elif name.endswith("mlp.down_proj"):
                shapes[name + ".weight"] = (m.out_features, 1)
            else:
                shapes[name + ".weight"] = (m.out_features, m.in_features)
    sd = randomise(shapes)
    sd["model.embed_tokens.weight"] = Rand(shapes["model.embed_tokens.weight"], 0.02, 0.02)
    return {prefix + k: v for k, v in sd.items()}


@functools.lru_cache
def shifted_vae(shared_tools: str, scale: float, shift: float, gain: float = 1.0) -> dict:
    """The shared transparent VAE rebuilt for 16 latent channels with a latent scale and shift, no quant convs (the
    VAE of Flux, SD3 and their kin), in ldm names without a prefix.

    The hosts scale as s = (raw - shift) * scale (process_in) and back as raw = s / scale + shift (process_out), so
    the encoder writes raw = mean / scale + shift on channels 0-2 (shift elsewhere: s = 0) and the decoder's first
    conv reads s = (raw - shift) * scale. With ``gain`` G the sampler's latent is G times the block mean (built for
    the scale / G): a random model's updates are then G times smaller against the image and no longer clip it, as
    with tests/tools/make_transparent_vae.py --gain for SD."""
    path = os.path.join(shared_tools, "make_transparent_vae.py")
    spec = importlib.util.spec_from_file_location("shared_make_transparent_vae", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.Z, mod.SCALE = 16, scale / gain
    sd = mod.build()
    z = mod.Z
    sd["encoder.conv_out.bias"][:z] += shift  # raw latent = s / scale + shift (logvar channels untouched)
    w, b = sd["decoder.conv_in.weight"], sd["decoder.conv_in.bias"]
    for c in range(3):  # +s channel 4c reads scale * raw, -s channel 4c+1 reads -scale * raw: remove the shift
        b[4 * c] -= shift * mod.SCALE
        b[4 * c + 1] += shift * mod.SCALE
    assert w[4 * 0, 0, 1, 1] == mod.SCALE
    for k in ("quant_conv.weight", "quant_conv.bias", "post_quant_conv.weight", "post_quant_conv.bias"):
        del sd[k]
    return sd


def flux_vae(shared_tools: str, gain: float = 1.0) -> dict:
    """The transparent VAE of the Flux layout (scale 0.3611, shift 0.1159) under Neo's single-file prefix."""
    return {"vae." + k: v for k, v in shifted_vae(shared_tools, FLUX_SCALE, FLUX_SHIFT, gain).items()}


def build(family: str, neo: str, shared_tools: str) -> dict:
    """The family's tensors (random ones as Rand) under the single-file prefixes its model_list class reads."""
    if family in ("flux-dev", "flux-schnell"):
        parts = (
            flux_transformer(family == "flux-dev"),
            clip_l(neo),
            t5xxl_narrow(neo, "black-forest-labs/FLUX.1-dev/text_encoder_2"),
        )
    elif family == "chroma":
        parts = chroma_transformer(), t5xxl_narrow(neo, "Chroma/text_encoder")
    elif family == "z-image":
        te = llm_narrow(neo, "Qwen3_4B", "Tongyi-MAI/Z-Image-Turbo/text_encoder", "text_encoders.qwen3_4b.transformer.")
        parts = z_image_transformer(), te
    else:
        te = llm_narrow(neo, "Gemma2_2B", "neta-art/Neta-Lumina/text_encoder", "text_encoders.gemma2_2b.transformer.")
        parts = lumina2_transformer(), te
    sd = {}
    for part in (*parts, flux_vae(shared_tools)):
        sd.update(part)
    return sd


SAFETENSORS_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float8_e4m3fn: "F8_E4M3",
}


def write_safetensors(
    path: str,
    sd: dict,
    seed: int,
    metadata: dict,
    half: tuple[str, ...] = (),
    dtype_of: Callable[[str], torch.dtype] | None = None,
) -> None:
    """Write safetensors tensor by tensor: each Rand drawn in chunks from a generator seeded by the seed and its
    name (the same file whatever the order of the families), so no model sits in memory. fp32, except the tensors
    whose names start with one of ``half``, stored in fp16 (the hosts cast on load), or as ``dtype_of(name)`` says
    (fp8 storage: the values are drawn in fp32 and rounded)."""
    if dtype_of is None:
        dtype_of = lambda name: torch.float16 if name.startswith(half) else torch.float32  # noqa: E731
    names, header, offset = sorted(sd), {"__metadata__": metadata}, 0
    dtypes = {n: dtype_of(n) for n in names}
    for name in names:
        dtype = dtypes[name]
        size = dtype.itemsize * math.prod(sd[name].shape)
        header[name] = {
            "dtype": SAFETENSORS_DTYPES[dtype],
            "shape": list(sd[name].shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # tensors 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        for name in names:
            value, dtype = sd[name], dtypes[name]
            if isinstance(value, torch.Tensor):
                f.write(value.detach().to(dtype).contiguous().reshape(-1).view(torch.uint8).numpy().data)
                continue
            gen = torch.Generator().manual_seed((seed << 32) + zlib.crc32(name.encode()))
            numel = math.prod(value.shape)
            for start in range(0, numel, CHUNK):
                chunk = value.mean + value.std * torch.randn(min(CHUNK, numel - start), generator=gen)
                f.write(chunk.to(dtype).view(torch.uint8).numpy().data)


def write_then_check(out: str, write: Callable[[str], None], check: Callable[[str], None]) -> None:
    """Write the file as OUT.partial, check it, then rename it into place; a failed write (a full disk) or check
    leaves no partial file behind."""
    partial = out + ".partial"
    try:
        write(partial)
        check(partial)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    os.replace(partial, out)


def read_safetensors(path: str, keys: dict | None = None) -> dict:
    """The file as the host reads it (``backend/utils.py`` load_torch_file: safe_open, tensors on one private mmap),
    or only ``keys`` (name in the part: name in the file). The mapping goes when the last of its tensors does."""
    from safetensors import safe_open

    with safe_open(path, framework="pt", device="cpu") as f:
        return {k: f.get_tensor(name) for k, name in (keys or {k: k for k in f.keys()}).items()}


def split_like_neo(sd: dict, family: str):
    """``backend/loader.py`` split_state_dict without module files: Neo's own guess must name the family's model
    class; the parts are cut by the prefixes that class gives, and no key may be left over. Returns the guess and,
    per component, its keys (name in the part: name in the file)."""
    import huggingface_guess
    from backend.state_dict import try_filter_state_dict

    file_key = {id(v): k for k, v in sd.items()}  # the split moves the tensors, renaming their keys
    total = len(sd)
    guess = huggingface_guess.guess(sd)
    expected, repo, _ = FAMILIES[family]
    assert type(guess).__name__ == expected and guess.huggingface_repo == repo, (type(guess), guess.huggingface_repo)
    clip_target = guess.clip_target(sd)
    sd = guess.process_vae_state_dict(sd)
    parts = {
        guess.unet_target: try_filter_state_dict(sd, guess.unet_key_prefix),
        guess.vae_target: try_filter_state_dict(sd, guess.vae_key_prefix),
    }
    sd = guess.process_clip_state_dict(sd)
    for prefix, component in clip_target.items():
        parts[component] = try_filter_state_dict(sd, [prefix + "."])
    sizes = {component: len(part) for component, part in parts.items()}
    assert sum(sizes.values()) == total, f"Neo would ignore {total - sum(sizes.values())} keys"
    print(f"  guess: {type(guess).__name__} ({guess.huggingface_repo}); keys per part {sizes}")
    return guess, {component: {k: file_key[id(v)] for k, v in part.items()} for component, part in parts.items()}


def load(model: torch.nn.Module, sd: dict, allowed_missing: tuple = ()) -> None:
    """Neo's load (strict=False, ``backend/state_dict.py``) plus what it only prints: nothing missing or left over,
    every Neo Linear filled. assign=True uses the mmapped tensors as they are (shapes are still checked)."""
    from backend.operations import ForgeOperations

    missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    assert not unexpected and set(missing) <= set(allowed_missing), (missing, unexpected)
    empty = [n for n, m in model.named_modules() if isinstance(m, ForgeOperations.Linear) and m.weight is None]
    assert not empty, f"Linears without weights: {empty[:5]}"


def assert_live(name: str, out: torch.Tensor, shape: tuple) -> None:
    assert tuple(out.shape) == shape, f"{name}: shape {tuple(out.shape)}, expected {shape}"
    assert torch.isfinite(out).all() and out.std() > 0, f"{name}: output not finite or constant"


def token_ids(neo: str, repo: str, folder: str, kind: str, text: str = "a cat") -> list:
    """The prompt's ids as the host's tokenizer (its class from model_index.json) and text engine make them."""
    import transformers

    cls_name = read_json(hf(neo, repo, "model_index.json"))[folder][1]
    try:
        tokenizer = getattr(transformers, cls_name).from_pretrained(hf(neo, repo, folder))
    except Exception as e:
        print(f"  WARNING: the host cannot load backend/huggingface/{repo}/{folder} ({cls_name}): {str(e)[:100]}")
        if repo == "Chroma":
            print(f"  fix (host setup): cp {hf(neo, 'black-forest-labs/FLUX.1-dev/tokenizer_2/tokenizer.json')} "
                  f"{hf(neo, 'Chroma/tokenizer')}/")  # fmt: skip
        return [3, 9, 1712, 1]  # T5's "a cat"
    if kind == "qwen3_4b":
        return tokenizer(QWEN3_TEMPLATE.format(text))["input_ids"]
    if kind == "gemma2_2b":  # backend/text_processing/gemma_engine.py: BOS, no other special tokens
        return [2] + tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(text)["input_ids"]


def check_vae(repo_dir: str, sd: dict) -> None:
    """The family's own VAE config (scale and shift as Flux's), strict load, exact round trip of 8x8 blocks."""
    from backend.nn.vae import IntegratedAutoencoderKL

    config = IntegratedAutoencoderKL.load_config(os.path.join(repo_dir, "vae"))
    assert (config["latent_channels"], config["scaling_factor"], config["shift_factor"]) == (16, FLUX_SCALE, FLUX_SHIFT)
    vae = IntegratedAutoencoderKL.from_config(config)
    vae.load_state_dict(sd, strict=True)
    img = torch.randint(0, 256, (1, 3, 8, 8)).float().repeat_interleave(8, 2).repeat_interleave(8, 3)
    x = img / 127.5 - 1
    with torch.no_grad():
        s = vae.process_in(vae.encode(x))
        back = vae.decode(vae.process_out(s))
    mean = torch.nn.functional.avg_pool2d(x, 8)
    assert (s[:, :3] - mean).abs().max() < 1e-4 and s[:, 3:].abs().max() < 1e-4, "VAE latent is not the block mean"
    levels = (255.0 * ((back + 1) / 2).clamp(0, 1)).to(torch.uint8).float()  # the WebUI's truncation
    assert torch.equal(levels, img), "VAE round trip is not exact"
    print(f"  VAE: round trip exact ({tuple(s.shape)} latent)")


def check_text_encoder(neo: str, family: str, part) -> torch.Tensor:
    """Run the conditioning text encoder on the host's tokens in Neo's class, built as the host does with narrow
    Linears (fp32, no manual cast; ``part`` reads a component's tensors); returns the context the host would pass
    (T5's output, an LLM's layer -2)."""
    from backend.operations import using_forge_operations

    _, repo, kind = FAMILIES[family]
    cpu = dict(device=torch.device("cpu"), dtype=torch.float32, manual_cast_enabled=False)
    if kind == "t5xxl":
        from backend.nn.t5 import IntegratedT5

        component = "text_encoder_2" if family.startswith("flux") else "text_encoder"
        ids = token_ids(neo, repo, "tokenizer_2" if family.startswith("flux") else "tokenizer", kind)
        with using_forge_operations(**cpu):
            model = IntegratedT5(read_json(hf(neo, repo, component, "config.json")))
        load(model, part(component), allowed_missing=("logit_scale",))
        with torch.no_grad():
            out = model.transformer(torch.tensor([ids]))
        assert_live("T5", out, (1, len(ids), 4096))
    else:
        from backend.nn.llm import llama

        ids = token_ids(neo, repo, "tokenizer", kind)
        with using_forge_operations(**cpu):
            model = (llama.Qwen3_4B if kind == "qwen3_4b" else llama.Gemma2_2B)(
                read_json(hf(neo, repo, "text_encoder", "config.json"))
            )
        load(model, part("text_encoder"))
        width = model.model.config.hidden_size
        with torch.no_grad():  # backend/text_processing/{qwen3,gemma}_engine.py process_tokens
            embeds = model.get_input_embeddings()(torch.tensor([ids]))
            last, out = model(
                None, attention_mask=torch.ones(1, len(ids)), embeds=embeds, intermediate_output=-2,
                final_layer_norm_intermediate=False,
            )  # fmt: skip
        assert_live(f"{kind} final", last, (1, len(ids), width))
        assert_live(f"{kind} layer -2", out, (1, len(ids), width))
    print(f"  text encoder ({kind}): {len(ids)} tokens -> {tuple(out.shape)}, std {out.std():.3g}")
    return out


def check_transformer(guess, sd: dict, context: torch.Tensor) -> None:
    """Build the transformer from the guessed config as the host does (Neo's operations: narrow Linears taken as
    stored), load it and run it once on a [1, 16, 8, 8] latent with the text encoder's context."""
    from backend.operations import using_forge_operations

    name = type(guess).__name__
    if name.startswith("Flux"):
        from backend.nn.flux import IntegratedFluxTransformer2DModel as cls
    elif name == "Chroma":
        from backend.nn.chroma import IntegratedChromaTransformer2DModel as cls
    else:
        from backend.nn.lumina import NextDiT as cls
    with using_forge_operations(device=torch.device("cpu"), dtype=torch.float32, manual_cast_enabled=False):
        model = cls(**guess.unet_config)
    load(model, sd)
    kwargs = {}
    if name.startswith("Flux"):
        kwargs = {
            "y": torch.randn(1, 768),
            "guidance": torch.tensor([3.5]) if guess.unet_config["guidance_embed"] else None,
        }
    with torch.no_grad():
        out = model(torch.randn(1, 16, 8, 8), torch.tensor([0.5]), context=context, **kwargs)
    assert_live("transformer", out, (1, 16, 8, 8))
    print(f"  transformer: {tuple(out.shape)}, std {out.std():.3g}")


def check(neo: str, family: str, path: str) -> None:
    """Read the written file the host's way and run each part once in Neo's own classes. Each part is read again on
    its own (its pages leave memory with it), so a check holds one part, not the file."""
    torch.manual_seed(0)
    guess, keys = split_like_neo(read_safetensors(path), family)
    check_vae(hf(neo, guess.huggingface_repo), read_safetensors(path, keys["vae"]))
    context = check_text_encoder(neo, family, lambda component: read_safetensors(path, keys[component]))
    check_transformer(guess, read_safetensors(path, keys["transformer"]), context)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("families", nargs="*", choices=FAMILIES)
    ap.add_argument(
        "--gain-vae",
        metavar="FILE",
        help="also write the 16-channel Flux-layout transparent VAE with gain 16 as a standalone VAE module "
        "(models/VAE; for Flux, Chroma, Z-Image and Lumina 2 measurements where a random model must not clip)",
    )
    ap.add_argument("--neo", required=True, help="Forge Neo checkout (its backend and bundled configs)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--shared-tools", default=os.path.join(REPO_ROOT, "..", "shared", "tools"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    shared = os.path.abspath(a.shared_tools)
    neo = os.path.abspath(a.neo)
    import_neo(neo)
    os.makedirs(out, exist_ok=True)
    if a.gain_vae:
        vae = {k[len("vae.") :]: v.contiguous() for k, v in flux_vae(shared, 16.0).items()}
        from safetensors.torch import save_file

        save_file(vae, a.gain_vae, metadata={"transparent_vae": "Flux layout, 16 channels, gain 16"})
        print(f"wrote {a.gain_vae}: {len(vae)} tensors")
    for family in a.families:
        print(f"{family}:")
        sd = build(family, neo, shared)
        counts = {}
        for k, v in sd.items():
            part = {"model": "transformer", "vae": "VAE"}.get(k.split(".")[0]) or k.split(".")[1]
            counts[part] = counts.get(part, 0) + math.prod(v.shape)
        path = os.path.join(out, f"random-{family}.safetensors")
        partial = path + ".partial"
        write_safetensors(partial, sd, a.seed, {"random": family})
        del sd
        try:
            check(neo, family, partial)
        except BaseException:
            os.remove(partial)
            raise
        os.replace(partial, path)
        size = os.path.getsize(path)
        params = ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in counts.items())
        print(f"wrote {path}: {size / 1e9:.2f} GB, {sum(counts.values()) / 1e6:.1f} M parameters ({params})")
        print(f"  peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
    main()
