#!/usr/bin/env python3
"""Write tiny random-weight Qwen-Image (-Edit), Anima and Wan 2.1 checkpoints, with a transparent Wan 2.1 VAE, that
Forge Neo runs.

All of them decode through the Wan 2.1 VAE (``backend/nn/wan_vae.py``) and sample 5-D latents [B, 16, T, h/8, w/8]
(T = 1 for images). Neo builds every component from the fixed configs bundled in ``backend/huggingface/<repo>`` and
refuses to load a checkpoint without all of them (``backend/loader.py``: each component asserts > 16 tensors), so
each file holds a transformer, a text encoder and a VAE. What sets each shape:

* Linear layers cost nothing until loaded: Neo's ``ForgeOperations.Linear`` takes the stored tensor as it is, any
  shape (``backend/operations.py``). Every width that is private to an MLP (``Linear(d, I) -> act -> Linear(I, d)``)
  is stored at 16; so is the inner width of the timestep embedders and adaLN Linears, whose outputs are only chunked
  and broadcast: one value per chunk (Qwen-Image) or one value added to the adaLN-LoRA term (Anima). Widths that a
  norm, an embedding, a ``view`` with the config's head count and head size, or an ``einops`` pattern pins stay at
  the config's size: attention projections, token embeddings, norms, convolutions.
* Qwen-Image: ``QwenImageTransformer2DModel`` with 1 block (Neo counts ``transformer_blocks.N``; 24 heads x 128,
  the text width 3584 and the patch size are fixed), ~88 M parameters, fp32. Text encoder Qwen2.5-VL-7B
  (``Qwen25_7BVLI``, 28 layers asserted against ``Qwen/Qwen-Image/text_encoder/config.json``): the 152064 x 3584
  embedding and the attention projections are full size, the MLPs 16 wide, ~1.37 B parameters in bf16. Its vision
  tower ``visual.*`` is left out: plain Qwen-Image never runs it, Neo loads with ``strict=False`` and only prints
  the missing keys.
* Qwen-Image-Edit: the same file with the vision tower (its MLPs and the merger's hidden width 16 wide, attention
  and patch conv full: 0.26 B parameters), written as ``random-qwen-image-edit``: Neo takes a checkpoint for the
  edit model when its path holds "qwen" and "edit" (``backend/loader.py``), and then sends the init image through
  the vision tower and the VAE as a reference (``backend/diffusion_engine/qwen.py``).
* Wan 2.1 text-to-video: ``WanModel`` of width 128 (one head) with one block and a 16-wide FFN (Neo reads all three
  from the keys), UMT5-XXL (the 256384 x 4096 token table, which also names it, full size; q/k/v one dimension per
  head and the MLPs 1 wide, as the flow tool's T5) in bf16: 2.7 GB. Neo's Wan img2img does not start from the
  init image (``encode_first_stage`` returns the latent of zeros), so this file serves the extension's refusal.
* Anima: the DiT (``backend/nn/anima.py``) has 28 blocks and width 2048 fixed by Neo's detection (it asserts 2048 and
  does not count blocks), and every block's self- and cross-attention projections are pinned by
  ``rearrange(..., h=16, d=128)``: ~0.82 B parameters however narrow the rest is, so the DiT is stored in bf16 (fp32
  would make the file 4.7 GB). Text encoder Qwen3-0.6B (28 layers, MLPs 16 wide) in bf16, plus the LLM adapter that
  Neo reads from the DiT's keys (``llm_adapter.*``) and moves to the text encoder.
* VAE (both): the Wan 2.1 VAE at its config size (base 96, ~127 M parameters, shape-checked convolutions), fp32,
  with hand-set weights so that it is transparent for T = 1: the scaled latent the sampler sees is the 8x8 block
  mean of the image in [-1, 1] on channels 0-2 and exactly 0 elsewhere, and decoding turns each latent pixel back
  into one 8x8 block, so an image of 8x8 blocks comes back exactly after the WebUI's uint8 truncation. See
  ``transparent_wan_vae`` for how.

Key layout (``huggingface_guess/model_list.py``): Qwen-Image ``model.diffusion_model.*``, ``vae.*``,
``text_encoders.qwen25_7b.*`` (the ``.transformer`` variant is never matched); Anima ``model.diffusion_model.*``
(with ``llm_adapter.*``), ``first_stage_model.*``, ``cond_stage_model.qwen3_06b.transformer.*``; Wan
``model.diffusion_model.*``, ``vae.*``, ``text_encoders.umt5xxl.transformer.*``. Keep "edit" and "kontext" out of the
output folder: Neo reads model variants from the path (the edit file's own name has them on purpose).

Host flags: ``--bf16-text-enc`` keeps the text encoders' Linears as stored (mmapped); ``--fp32-text-enc`` copies
them to fp32 (Qwen2.5: +3.3 GB). The Anima DiT stays bf16 (1.65 GB, mmapped) with ``--bf16-unet`` and becomes a
3.3 GB fp32 copy with ``--fp32-unet`` or no unet flag (CPU); compute is fp32 either way. The VAE needs fp32
(``--fp32-vae``, also Neo's default on CPU). Token embeddings are fp32 in Neo whatever the flags (``Embedding`` gets
no dtype): 2.2 GB for Qwen2.5's, 0.75 GB for Qwen3's and the adapter's.

Usage (Forge Neo's venv, from Neo's folder):
    cd /work/hosts/neo/webui && venv/bin/python /work/main/tests/tools/make_wan_vae_checkpoints.py \\
        --neo /work/hosts/neo/webui --out /work/hosts/flow --shared-tools /work/shared/tools \\
        qwen-image qwen-image-edit anima wan
Writes OUT/random-<family>.safetensors. The file is streamed to OUT/random-<family>.partial.safetensors one tensor
at a time, then checked the way Neo loads it (``split_state_dict``: detection and key split;
``load_huggingface_component`` for each part, with the flags above): VAE round trip exact and local, text encoder
finite and prompt-dependent, transformer finite on a [1, 16, 1, 8, 8] latent; only then renamed into place.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import fnmatch
import importlib.util
import io
import json
import math
import os
import struct
import sys
import zlib
from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch

FAMILIES = ("qwen-image", "qwen-image-edit", "anima", "wan")
QWEN_REPO = "backend/huggingface/Qwen/Qwen-Image"
WAN_REPO = "backend/huggingface/Wan-AI/Wan2.1-T2V-14B"
ANIMA_REPO = "backend/huggingface/circlestone-labs/Anima"
NEO_FLAGS = ["--cpu", "--bf16-text-enc", "--fp32-vae"]  # the check loads the parts as a host with these flags does
MLP_WIDTH = 16  # width of every MLP-private Linear
MOD_WIDTH = 16  # inner width of the timestep embedders and adaLN(-LoRA) Linears
EMBED_MEAN = 1.0  # token embeddings ~ N(1, 1): Neo's "Original" emphasis divides by the embeddings' mean
OFFSET_LEVELS = 0.25  # decoded + 0.25 of an 8-bit level: the WebUI's uint8 truncation returns the input level
CARRIED = 8  # VAE channels carrying the image: (K' + v, K' - v) per colour, then the ballast pair (+K, -K)
CHUNK = 1 << 22  # elements per generated block when streaming a tensor to disk
ST_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16"}


class Part(NamedTuple):
    """One tensor of the file: its shape, dtype and a function yielding its rows in blocks."""

    shape: tuple
    dtype: torch.dtype
    chunks: Callable[[], Iterable[torch.Tensor]]


def import_neo(neo: str) -> None:
    """Make Neo's ``backend`` importable; its args parser reads sys.argv once, at import (``backend/args.py``)."""
    os.chdir(neo)
    sys.path[:0] = [neo, os.path.join(neo, "modules_forge", "packages")]
    sys.argv = [sys.argv[0], *NEO_FLAGS]


def fixed(t: torch.Tensor) -> Part:
    """A tensor already built (the VAE's)."""
    return Part(tuple(t.shape), t.dtype, lambda: [t])


def random_part(name: str, shape: tuple, dtype: torch.dtype, seed: int) -> Part:
    """Seeded per name (so order and the other tensors do not matter), generated in row blocks of ~4 M elements.

    Norm weights ~ 1 + 0.1 N(0, 1); token embeddings ~ N(EMBED_MEAN, 1), other embeddings N(0, 1); biases 0.02 N;
    Linear weights N(0, 1/fan_in), so every projection keeps unit scale, narrow ones included."""
    leaf = name.rsplit(".", 2)[-2:]
    if len(shape) == 1 and leaf[-1] == "weight":
        assert "norm" in name or name.endswith("ln_q.weight"), name
        std, mean = 0.1, 1.0
    elif name.endswith("embed_tokens.weight"):
        std, mean = 1.0, EMBED_MEAN
    elif name.endswith("embed.weight"):
        std, mean = 1.0, 0.0
    elif leaf[-1] == "bias":
        std, mean = 0.02, 0.0
    else:  # Linears, convolutions (fan-in: every dimension after the first), Wan's modulation tables
        assert len(shape) >= 2, (name, shape)
        std, mean = 1.0 / math.sqrt(math.prod(shape[1:])), 0.0
    seed_n = (seed * 1_000_003 + zlib.crc32(name.encode())) % (1 << 62)

    def chunks():
        gen = torch.Generator().manual_seed(seed_n)
        row = math.prod(shape[1:])
        step = max(1, CHUNK // max(1, row))
        for r in range(0, shape[0], step):
            n = min(step, shape[0] - r)
            yield (torch.randn((n, *shape[1:]), generator=gen) * std + mean).to(dtype)

    return Part(tuple(shape), dtype, chunks)


def write_safetensors(path: str, parts: dict[str, Part], metadata: dict[str, str]) -> None:
    """Stream the tensors to a safetensors file one block at a time (``save_file`` would hold every tensor twice).

    Wider dtypes first, so every tensor's offset is a multiple of its element size, as safetensors' own writer does."""
    order = sorted(parts, key=lambda k: (-parts[k].dtype.itemsize, k))
    header, offset = {}, 0
    for k in order:
        p = parts[k]
        n = math.prod(p.shape) * p.dtype.itemsize
        header[k] = {"dtype": ST_DTYPES[p.dtype], "shape": list(p.shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = metadata
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for k in order:
            p, written = parts[k], 0
            for c in p.chunks():
                assert c.dtype == p.dtype and c.shape[1:] == p.shape[1:], (k, c.shape, p.shape)
                f.write(c.contiguous().reshape(-1).view(torch.uint8).numpy())
                written += c.numel()
            assert written == math.prod(p.shape), k


@contextlib.contextmanager
def torch_modules_on_meta():
    """Neo's LLM classes call ``nn.RMSNorm(..., add=...)``, which only its ForgeOperations accept; build them with
    torch's own modules (a Linear keeps its bias flag, so state_dict() lists every tensor) on the meta device."""

    class RMSNorm(torch.nn.RMSNorm):
        def __init__(self, *args, add=False, **kwargs):
            super().__init__(*args, **kwargs)

    original = torch.nn.RMSNorm
    torch.nn.RMSNorm = RMSNorm
    try:
        with torch.device("meta"):
            yield
    finally:
        torch.nn.RMSNorm = original


def shapes_of(module: torch.nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def narrow(shapes: dict[str, tuple], rules: dict[str, Callable[[tuple], tuple]]) -> dict[str, tuple]:
    """Reshape the tensors whose name ends with a rule's pattern (fnmatch; Linears that Neo does not shape-check)."""
    out = {}
    for k, s in shapes.items():
        for pattern, rule in rules.items():
            if fnmatch.fnmatchcase(k, "*" + pattern):
                s = rule(s)
                break
        out[k] = s
    return out


def rows(n: int) -> Callable[[tuple], tuple]:
    return lambda s: (n, *s[1:])


def cols(n: int) -> Callable[[tuple], tuple]:
    return lambda s: (s[0], n)


def parts_for(prefix: str, shapes: dict[str, tuple], dtype: torch.dtype, seed: int) -> dict[str, Part]:
    return {prefix + k: random_part(prefix + k, s, dtype, seed) for k, s in shapes.items()}


def qwen_image_transformer(seed: int) -> dict[str, Part]:
    """``QwenImageTransformer2DModel(num_layers=1)``: Neo reads only in_channels (64) and the block count from the keys
    (``detection.py``, ``txt_norm.weight``); q/k are pinned by RMSNorm(128) and v by the attention's reshape with
    q's head size, so the attention and txt_in are full size. Narrow: the MLPs; the timestep embedder's width (temb
    only feeds the modulations); img_mod/txt_mod [6, .] and norm_out.linear [2, .], whose outputs are chunked into
    per-sample scalars that broadcast over the 3072 channels."""
    from backend.nn.qwen import QwenImageTransformer2DModel

    with torch.device("meta"):
        model = QwenImageTransformer2DModel(num_layers=1)
    mw, tw = MLP_WIDTH, MOD_WIDTH
    shapes = narrow(
        shapes_of(model),
        {
            "timestep_embedder.linear_1.weight": rows(tw),
            "timestep_embedder.linear_1.bias": rows(tw),
            "timestep_embedder.linear_2.weight": lambda s: (tw, tw),
            "timestep_embedder.linear_2.bias": rows(tw),
            "_mod.1.weight": lambda s: (6, tw),
            "_mod.1.bias": rows(6),
            "norm_out.linear.weight": lambda s: (2, tw),
            "norm_out.linear.bias": rows(2),
            "mlp.net.0.proj.weight": rows(mw),
            "mlp.net.0.proj.bias": rows(mw),
            "mlp.net.2.weight": cols(mw),
        },
    )
    return parts_for("model.diffusion_model.", shapes, torch.float32, seed)


def qwen25_text_encoder(neo: str, seed: int, vision: bool = False) -> dict[str, Part]:
    """Qwen2.5-VL-7B's language model (``Qwen25_7BVLI``, config asserted equal to the bundled config.json): 28 layers,
    28 query and 4 key/value heads of 128 (``view`` with fixed heads), so only the MLPs narrow. Prefix
    ``text_encoders.qwen25_7b.``: ``clip_target`` tests ``text_encoders..qwen25_7b.transformer...`` (two dots) and
    always takes the prefix without ``.transformer``. ``visual.*`` is left out unless ``vision`` (Qwen-Image-Edit
    runs it on the init image): then the vision tower (``backend/nn/llm/qwen_vl.py``, 32 blocks of width 1280) keeps
    its patch conv, norms and attention (``reshape`` by 16 heads), and its MLPs and the merger's hidden width
    (private between ``mlp.0`` and ``mlp.2``) narrow: 0.26 B parameters."""
    from backend.nn.llm.llama import Qwen25_7BVLI
    from backend.utils import read_arbitrary_config

    with torch_modules_on_meta():
        model = Qwen25_7BVLI(read_arbitrary_config(os.path.join(neo, QWEN_REPO, "text_encoder")))
    shapes = {k: s for k, s in shapes_of(model).items() if vision or not k.startswith("visual.")}
    shapes = narrow(
        shapes,
        {
            "gate_proj.weight": rows(MLP_WIDTH),
            "up_proj.weight": rows(MLP_WIDTH),
            "gate_proj.bias": rows(MLP_WIDTH),
            "up_proj.bias": rows(MLP_WIDTH),
            "merger.mlp.0.weight": rows(MLP_WIDTH),
            "merger.mlp.0.bias": rows(MLP_WIDTH),
        },
    )
    shapes = narrow(shapes, {"down_proj.weight": cols(MLP_WIDTH), "merger.mlp.2.weight": cols(MLP_WIDTH)})
    return parts_for("text_encoders.qwen25_7b.", shapes, torch.bfloat16, seed)


def wan_transformer(seed: int) -> dict[str, Part]:
    """``WanModel`` (``backend/nn/wan.py``) as Neo's detection reads it from the keys: width from
    ``head.modulation`` (128: one head of 128), FFN width from ``blocks.0.ffn.0`` (16), one block, text-to-video
    (no ``img_emb``), 16 latent channels in and out. fp32, 0.6 M parameters."""
    from backend.nn.wan import WanModel

    with torch.device("meta"):
        model = WanModel(model_type="t2v", dim=128, ffn_dim=MLP_WIDTH, num_heads=1, num_layers=1, in_dim=16, out_dim=16)
    return parts_for("model.diffusion_model.", shapes_of(model), torch.float32, seed)


def umt5_text_encoder(neo: str, seed: int) -> dict[str, Part]:
    """UMT5-XXL as Neo builds it for Wan (``IntegratedT5`` from the bundled config; the loader names it umt5xxl by
    its 256384-token table, which is shape-checked and so full size: 1.05 B of the 1.09 B parameters): its 24 layers
    with their own relative attention biases and norms at full size; q/k/v one dimension per head (the attention
    takes the head size from q's width) and the gated MLP 1 wide, as ``make_flow_checkpoints.t5xxl_narrow``. bf16."""
    from backend.nn.t5 import IntegratedT5
    from backend.utils import read_arbitrary_config

    config = read_arbitrary_config(os.path.join(neo, WAN_REPO, "text_encoder"))
    with torch.device("meta"):
        model = IntegratedT5(config)
    heads = config["num_heads"]
    shapes = {k: s for k, s in shapes_of(model).items() if k != "logit_scale"}
    shapes = narrow(
        shapes,
        {
            "SelfAttention.[qkv].weight": rows(heads),
            "SelfAttention.o.weight": cols(heads),
            "wi_[01].weight": rows(1),
            "wo.weight": cols(1),
        },
    )
    return parts_for("text_encoders.umt5xxl.", shapes, torch.bfloat16, seed)


def anima_config() -> dict:
    """The DiT config exactly as Neo's detection builds it from the keys (model_channels from x_embedder = 2048)."""
    from huggingface_guess.detection import detect_unet_config

    p, meta = "model.diffusion_model.", torch.empty(1, device="meta")
    probe = {
        p + "blocks.0.mlp.layer1.weight": meta,
        p + "llm_adapter.blocks.0.cross_attn.q_proj.weight": meta,
        p + "x_embedder.proj.1.weight": torch.empty(2048, 68, device="meta"),
    }
    config = detect_unet_config(probe, p)
    config.pop("image_model")
    return config


def anima_transformer(neo: str, seed: int) -> dict[str, Part]:
    """``Anima`` (Cosmos MiniTrainDIT) with Neo's fixed config: 28 blocks of width 2048, q/k/v pinned by
    ``rearrange(h=16, d=128)``. Narrow: the MLPs; the timestep embedder's inner width (its 6144-wide adaLN-LoRA output
    is sliced to 2 x 2048 by the final layer, so it stays); adaLN modulations [.., 2048] -> [16] -> [1], broadcast
    onto the LoRA term. Includes the LLM adapter (``llm_adapter.*``, MLPs narrow), which detection asserts among the
    DiT keys and the loader moves to the text encoder (``loader.py`` process_anima)."""
    from backend.nn.anima import Anima
    from backend.nn.llm.llama import Qwen3_06B
    from backend.utils import read_arbitrary_config

    with torch.device("meta"):
        model = Anima(**anima_config())
    tw = MOD_WIDTH
    shapes = narrow(
        shapes_of(model),
        {
            "t_embedder.1.linear_1.weight": rows(tw),
            "t_embedder.1.linear_2.weight": cols(tw),
            "mlp.layer1.weight": rows(MLP_WIDTH),
            "mlp.layer2.weight": cols(MLP_WIDTH),
            "adaln_modulation*.1.weight": rows(tw),  # adaln_modulation{,_self_attn,_cross_attn,_mlp}
            "adaln_modulation*.2.weight": lambda s: (1, tw),
        },
    )
    with torch_modules_on_meta():
        te = Qwen3_06B(read_arbitrary_config(os.path.join(neo, ANIMA_REPO, "text_encoder")))
    adapter = {k: s for k, s in shapes_of(te).items() if k.startswith("llm_adapter.")}
    mw = MLP_WIDTH
    adapter = narrow(adapter, {"mlp.0.weight": rows(mw), "mlp.0.bias": rows(mw), "mlp.2.weight": cols(mw)})
    return {
        **parts_for("model.diffusion_model.", shapes, torch.bfloat16, seed),
        **parts_for("model.diffusion_model.", adapter, torch.bfloat16, seed),
    }


def qwen3_text_encoder(neo: str, seed: int) -> dict[str, Part]:
    """Qwen3-0.6B (``Qwen3_06B``, chosen by the config's hidden_size 1024): 28 layers, 16 query / 8 key-value heads of
    128 with q/k RMSNorm(128), so only the MLPs narrow. Prefix ``cond_stage_model.qwen3_06b.transformer.``
    (Anima keeps BASE's ``cond_stage_model.`` text-encoder prefix)."""
    from backend.nn.llm.llama import Qwen3_06B
    from backend.utils import read_arbitrary_config

    with torch_modules_on_meta():
        model = Qwen3_06B(read_arbitrary_config(os.path.join(neo, ANIMA_REPO, "text_encoder")))
    shapes = {k: s for k, s in shapes_of(model).items() if not k.startswith("llm_adapter.")}
    shapes = narrow(shapes, {"gate_proj.weight": rows(MLP_WIDTH), "up_proj.weight": rows(MLP_WIDTH)})
    shapes = narrow(shapes, {"down_proj.weight": cols(MLP_WIDTH)})
    return parts_for("cond_stage_model.qwen3_06b.transformer.", shapes, torch.bfloat16, seed)


def shared_constants(shared_tools: str) -> tuple[float, float, float]:
    """K (ballast), B and C (pre-SiLU value B + C*s) of the shared SD transparent VAE, reused here."""
    path = os.path.join(shared_tools, "make_transparent_vae.py")
    spec = importlib.util.spec_from_file_location("shared_make_transparent_vae", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return float(mod.K), float(mod.B), float(mod.C)


def transparent_wan_vae(neo: str, repo: str, shared_tools: str, gain: float = 1.0) -> dict[str, torch.Tensor]:
    """The Wan 2.1 VAE (every tensor of Neo's ``WanVAE`` for the repo's vae/config.json) set by hand, for T = 1.

    For one frame without a feature cache every CausalConv3d uses only its last temporal tap (``autopad=
    "causal_zero"`` crops the kernel to the input length) and Resample skips ``time_conv``, so the net is 2-D.
    Each colour v travels as the pair (K' + v, K' - v), K' = B/C = 4, next to a ballast pair (+K, -K), K = 2^20, on
    channels 0-7. ResidualBlocks are their shortcut (both convs zero; 1x1 shortcuts copy channels 0-7), attention
    is zero (to_qkv, proj), downsampling is a 2x2 mean (0.25 on the stride-2 conv's top-left taps, clear of the
    right/bottom pad), upsampling is nearest x2 plus a centre-tap copy. The only norms on the path are the two heads'
    RMS_norm (no bias: x / |x|_2 over channels * sqrt(dim) * gamma): the pixel's norm is sqrt(2K^2 + 6K'^2) to fp32
    precision whatever the image, and gamma = C * that / sqrt(dim) on the pairs (0 on the ballast) turns them into
    C*K' +- C*v in [24, 40], where SiLU is exactly the identity in fp32. The head convs take half the pair
    difference. Encoder head: raw latent = mean_c + std_c * (block mean) on channels 0-2 and mean_c elsewhere, so
    Neo's Wan21 ``process_in`` ((z - mean) / std) gives the block mean and exact zeros; decoder conv1 reads
    s = (z - mean_c) / std_c back; the decoder head adds the 0.25-level offset. Every other tensor, time_conv
    included, is zero (norm gammas in the zeroed branches one). Latents outside [-1, 1] decode monotonically to
    values the WebUI clamps; each latent pixel only touches its own 8x8 block. With ``gain`` G the scaled latent is
    G times the block mean: a random model's updates are G times smaller against the image and stop clipping it."""
    from backend.nn.wan_vae import CausalConv3d, Resample, ResidualBlock, WanVAE
    from huggingface_guess.latent import Wan21

    big_k, b, c = shared_constants(shared_tools)
    kp = b / c
    config = WanVAE.load_config(os.path.join(neo, repo, "vae"))
    fmt = Wan21()
    mean, std = fmt.latents_mean.flatten(), fmt.latents_std.flatten()
    assert torch.allclose(mean, torch.tensor(config["latents_mean"])), "config and Wan21 latent means differ"
    assert torch.allclose(std, torch.tensor(config["latents_std"])), "config and Wan21 latent stds differ"
    with torch.device("meta"):
        model = WanVAE.from_config(config)
    z = model.z_dim
    sd = {k: (torch.ones if k.endswith("gamma") else torch.zeros)(s) for k, s in shapes_of(model).items()}
    idx = torch.arange(CARRIED)
    for name, mod in model.named_modules():
        if isinstance(mod, ResidualBlock) and isinstance(mod.shortcut, CausalConv3d):
            sd[name + ".shortcut.weight"][idx, idx, -1, 0, 0] = 1.0
        elif isinstance(mod, Resample) and mod.mode.startswith("downsample"):
            sd[name + ".resample.1.weight"][idx, idx, :2, :2] = 0.25
        elif isinstance(mod, Resample) and mod.mode.startswith("upsample"):
            sd[name + ".resample.1.weight"][idx, idx, 1, 1] = 1.0
    norm0 = math.sqrt(2 * big_k**2 + 6 * kp**2)  # |pixel| over channels with v = 0 (the v terms vanish in fp32)

    def spread(w: torch.Tensor, bias: torch.Tensor, gains: torch.Tensor, offsets: torch.Tensor) -> None:
        """Input channel i -> (K' + g_i x + o_i, K' - g_i x - o_i) on channels 2i, 2i+1 (centre, last temporal tap);
        ballast (+K, -K) on channels 6, 7."""
        for i in range(3):
            w[2 * i, i, -1, 1, 1], w[2 * i + 1, i, -1, 1, 1] = gains[i], -gains[i]
            bias[2 * i], bias[2 * i + 1] = kp + offsets[i], kp - offsets[i]
        bias[6], bias[7] = big_k, -big_k

    def head_norm(gamma: torch.Tensor) -> None:
        gamma.zero_()
        gamma[:6] = c * norm0 / math.sqrt(gamma.shape[0])

    def halves(w: torch.Tensor, gains: torch.Tensor) -> None:
        """Output channel i = g_i * (y_2i - y_2i+1) / (2C) (centre, last temporal tap)."""
        for i in range(3):
            w[i, 2 * i, -1, 1, 1], w[i, 2 * i + 1, -1, 1, 1] = gains[i] / (2 * c), -gains[i] / (2 * c)

    spread(sd["encoder.conv1.weight"], sd["encoder.conv1.bias"], torch.ones(3), torch.zeros(3))
    head_norm(sd["encoder.head.0.gamma"])
    halves(sd["encoder.head.2.weight"], std[:3] * gain)
    sd["encoder.head.2.bias"][:z] = mean  # raw = mean_c + std_c * m (channels 0-2), mean_c elsewhere
    sd["conv1.weight"][:, :, 0, 0, 0] = torch.eye(2 * z)
    sd["conv2.weight"][:, :, 0, 0, 0] = torch.eye(z)
    spread(sd["decoder.conv1.weight"], sd["decoder.conv1.bias"], 1.0 / (std[:3] * gain), -mean[:3] / (std[:3] * gain))
    head_norm(sd["decoder.head.0.gamma"])
    halves(sd["decoder.head.2.weight"], torch.ones(3))
    sd["decoder.head.2.bias"][:] = 2.0 * OFFSET_LEVELS / 255.0
    return {k: v.float().contiguous() for k, v in sd.items()}


def load_parts(path: str, want: str):
    """Neo's own split (``split_state_dict``: detection, prefixes, Anima's adapter move) and component loader."""
    from backend.loader import HF, load_huggingface_component, split_state_dict
    from diffusers import DiffusionPipeline

    state_dicts, guess = split_state_dict(path)
    assert type(guess).__name__ == want, f"detected {type(guess).__name__}, not {want}"
    repo = os.path.join(HF, guess.huggingface_repo)
    config = DiffusionPipeline.load_config(repo)

    def load(name: str, expect_missing: Callable[[str], bool] = lambda k: False):
        lib, cls = config[name]
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            model = load_huggingface_component(guess, name, lib, cls, repo, state_dicts.pop(name, None))
        for line in log.getvalue().splitlines():  # state_dict.py load_state_dict prints "<name> Missing: [...]"
            for kind in (" Missing: ", " Unexpected: "):
                if kind in line:
                    keys = ast.literal_eval(line.split(kind, 1)[1])
                    assert kind == " Missing: " and all(map(expect_missing, keys)), f"{name}: {line[:300]}"
                    print(f"  {name}: {len(keys)} keys missing as intended ({keys[0]}, ...)")
        return model

    return guess, load


def check_vae(vae_model, guess) -> str:
    """Through Neo's VAE patcher and the engines' encode/decode_first_stage steps, as the WebUI feeds them."""
    from backend.patcher.vae import VAE

    vae = VAE(model=vae_model, is_wan=True)
    vae.first_stage_model.latent_format = guess.latent_format
    gen = torch.Generator().manual_seed(1)
    img = torch.randint(0, 256, (1, 3, 8, 8), generator=gen).to(torch.uint8)
    img[0, :, 0, 0], img[0, :, 0, 1] = 0, 255
    img = img.repeat_interleave(8, 2).repeat_interleave(8, 3)
    x = img.float() / 255.0 * 2.0 - 1.0  # the WebUI's init image

    def encode(x):  # Qwen/Anima encode_first_stage
        return vae.first_stage_model.process_in(vae.encode(x.movedim(1, -1) * 0.5 + 0.5))

    def decode(s):  # decode_first_stage, then processing.py's 5-D flattening
        return (vae.decode(vae.first_stage_model.process_out(s)).movedim(-1, 2) * 2.0 - 1.0).flatten(0, 1)

    def u8(d):  # processing.py: clamp((x + 1) / 2), 255 *, astype(uint8) truncates
        return (255.0 * torch.clamp((d + 1.0) / 2.0, 0.0, 1.0)).to(torch.uint8)

    s = encode(x)
    assert s.shape == (1, 16, 1, 8, 8), s.shape
    block_mean = torch.nn.functional.avg_pool2d(x, 8)
    err = (s[:, :3, 0] - block_mean).abs().max().item()
    assert err < 1e-5 and torch.equal(s[:, 3:], torch.zeros_like(s[:, 3:])), f"latent is not the block mean ({err})"
    dec = decode(s)
    level_err = ((dec + 1) / 2 * 255 - img.float() - OFFSET_LEVELS)[img < 255].abs().max().item()  # 255 clamps
    assert torch.equal(u8(dec), img), "round trip is not exact after uint8 truncation"
    s2 = s.clone()
    s2[0, :3, 0, 3, 5] += 0.3
    d = decode(s2) - dec
    inside = torch.zeros_like(d, dtype=torch.bool)
    inside[..., 24:32, 40:48] = True
    assert d[~inside].abs().max() == 0 and (d[inside] - 0.3).abs().max() < 1e-5, "one latent pixel is not one block"
    s3 = s.clone()
    s3[..., :4] = torch.randn(s3[..., :4].shape, generator=gen) * 1000
    d3 = decode(s3)
    assert torch.isfinite(d3).all() and torch.equal(d3[..., 32:], dec[..., 32:]), "garbage latents leak"
    return f"VAE: latent = block mean (max err {err:.1e}), decode {level_err:.1e} levels off +0.25, exact, local"


def check_dit(dit: torch.nn.Module, c1: torch.Tensor, c2: torch.Tensor) -> str:
    """The transformer on a [1, 16, 1, 8, 8] latent with two prompts' contexts: finite, not constant, and the
    context changes it."""
    x = torch.randn(1, 16, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    v1 = dit(x, torch.tensor([0.5]), context=c1.float())
    v2 = dit(x, torch.tensor([0.5]), context=c2.float())
    assert v1.shape == x.shape and torch.isfinite(v1).all() and v1.std() > 0, "transformer output"
    assert (v1 - v2).abs().max() > 0, "transformer output does not depend on the context"
    return f"DiT: {tuple(v1.shape)} finite, std {v1.std():.2f}, context changes it by {(v1 - v2).abs().max():.2e}"


def check_qwen_image(path: str, edit: bool = False) -> list[str]:
    """Detection QwenImage (1 block); TE finite and prompt-dependent; DiT finite and context-dependent; VAE exact.
    ``edit``: the vision tower is in the file and loads, and its tokens for an image are finite and image-dependent
    (``preprocess_embed``, as QwenTextProcessingEngine calls it for Qwen-Image-Edit's reference)."""
    out = []
    guess, load = load_parts(path, "QwenImage")
    assert guess.unet_config.get("num_layers") == 1 and guess.unet_config.get("in_channels") == 64, guess.unet_config
    out.append(f"detected {type(guess).__name__} {guess.huggingface_repo} unet_config={guess.unet_config}")
    tok = load("tokenizer")
    te = load("text_encoder", (lambda k: False) if edit else (lambda k: k.startswith("visual.")))
    if edit:
        gen = torch.Generator().manual_seed(3)
        images = [torch.rand(1, 384, 384, 3, generator=gen) for _ in range(2)]  # encode_vision's [B, H, W, C] in 0..1
        (v1, grid), (v2, _) = (te.preprocess_embed({"type": "image", "data": im}, "cpu") for im in images)
        assert v1.shape[-1] == 3584 and torch.isfinite(v1).all() and v1.std() > 0, "vision tower output"
        assert (v1 - v2).abs().max() > 1e-3, "vision tower output does not depend on the image"
        out.append(f"vision: {tuple(v1.shape)} tokens for a 384x384 image (grid {grid.tolist()}), image-dependent")
    template = "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, "
    template += "spatial relationships of the objects and background:<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n"
    template += "<|im_start|>assistant\n"

    def encode(prompt):  # as qwen_engine.process_tokens: input embeddings, then the LLM on them
        ids = torch.tensor([tok([template.format(prompt)])["input_ids"][0]])
        emb = te.get_input_embeddings()(ids)
        z, _ = te(x=None, embeds=emb, attention_mask=torch.ones_like(ids), num_tokens=[ids.shape[1]], embeds_info=[])
        return z

    z1, z2 = encode("a red cube"), encode("a blue sphere")
    assert z1.shape[-1] == 3584 and torch.isfinite(z1).all() and z1.std(1).min() > 0, "Qwen2.5 output"
    assert (z1[:, -8:] - z2[:, -8:]).abs().max() > 1e-3, "Qwen2.5 output does not depend on the prompt"
    out.append(f"TE: Qwen2.5-VL {tuple(z1.shape)} finite, std {z1.std():.2f}, prompt-dependent")
    te = None  # free the text encoder before the transformer loads
    out.append(check_dit(load("transformer"), z1, z2))
    out.append(check_vae(load("vae"), guess))
    return out


def check_anima(path: str) -> list[str]:
    """Detection Anima; TE (Qwen3 + LLM adapter) finite and prompt-dependent; DiT finite; VAE exact."""
    out = []
    guess, load = load_parts(path, "Anima")
    out.append(f"detected {type(guess).__name__} {guess.huggingface_repo} (model_channels 2048, 28 blocks)")
    qtok, t5tok = load("tokenizer"), load("tokenizer_2")
    te = load("text_encoder")

    def encode(prompt):  # as anima_engine: Qwen3 on the prompt's tokens, then the adapter on its T5 ids, padded
        ids = torch.tensor([qtok([prompt], add_special_tokens=False)["input_ids"][0] or [151643]])
        emb = te.get_input_embeddings()(ids)
        z, _ = te(None, embeds=emb, attention_mask=torch.ones_like(ids), num_tokens=[ids.shape[1]], embeds_info=[])
        t5 = torch.tensor([t5tok([prompt], add_special_tokens=False)["input_ids"][0] + [1]])
        cross = te.preprocess_text_embeds(z, t5)
        return z, torch.nn.functional.pad(cross, (0, 0, 0, 512 - cross.shape[1]))

    (z1, c1), (_, c2) = encode("a red cube"), encode("a blue sphere")
    assert torch.isfinite(z1).all() and z1.std(1).min() > 0, "Qwen3 output"
    n = (c1.abs().sum(-1) > 0).sum()
    assert torch.isfinite(c1).all() and c1[:, :n].std(1).min() > 0 and (c1 - c2).abs().max() > 1e-3, "adapter output"
    out.append(f"TE: Qwen3 {tuple(z1.shape)} + adapter {tuple(c1.shape)} ({n} tokens) finite, prompt-dependent")
    te = None  # free the text encoder before the transformer loads
    out.append(check_dit(load("transformer"), c1, c2))
    out.append(check_vae(load("vae"), guess))
    return out


def check_wan(path: str) -> list[str]:
    """Detection WAN21_T2V (width 128, one block); UMT5 finite and prompt-dependent; DiT finite and context-dependent
    on a [1, 16, 1, 8, 8] latent; VAE exact (its img2img refusal is the extension's, see the live test)."""
    out = []
    guess, load = load_parts(path, "WAN21_T2V")
    config = guess.unet_config
    assert (config.get("dim"), config.get("num_layers"), config.get("model_type")) == (128, 1, "t2v"), config
    out.append(f"detected {type(guess).__name__} {guess.huggingface_repo} dim 128, 1 block, t2v")
    tok = load("tokenizer")
    te = load("text_encoder")

    def encode(prompt):  # umt5_engine: the tokens (with EOS) through the encoder
        return te.transformer(torch.tensor([tok([prompt])["input_ids"][0]]))

    z1, z2 = encode("a red cube"), encode("a blue sphere")
    assert z1.shape[-1] == 4096 and torch.isfinite(z1).all() and z1.std() > 0, "UMT5 output"
    assert (z1[:, -1] - z2[:, -1]).abs().max() > 1e-3, "UMT5 output does not depend on the prompt"
    out.append(f"TE: UMT5-XXL {tuple(z1.shape)} finite, prompt-dependent")
    te = None  # free the text encoder before the transformer loads
    out.append(check_dit(load("transformer"), z1, z2))
    out.append(check_vae(load("vae"), guess))
    return out


def set_unet_storage(dtype: torch.dtype) -> None:
    """Load the transformer in its file dtype (as a host started with --fp32-unet / --bf16-unet to match)."""
    import backend.args

    backend.args.args.fp32_unet = dtype == torch.float32
    backend.args.args.bf16_unet = dtype == torch.bfloat16


def build(family: str, neo: str, shared: str, seed: int) -> tuple[dict[str, Part], torch.dtype]:
    """All tensors of a family's file (the random ones generated lazily) and its transformer's dtype."""
    if family in ("qwen-image", "qwen-image-edit"):
        vae = transparent_wan_vae(neo, QWEN_REPO, shared)
        parts = {**qwen_image_transformer(seed), **qwen25_text_encoder(neo, seed, vision=family == "qwen-image-edit")}
        parts.update({"vae." + k: fixed(v) for k, v in vae.items()})
        return parts, torch.float32
    if family == "wan":
        vae = transparent_wan_vae(neo, WAN_REPO, shared)
        parts = {**wan_transformer(seed), **umt5_text_encoder(neo, seed)}
        parts.update({"vae." + k: fixed(v) for k, v in vae.items()})
        return parts, torch.float32
    vae = transparent_wan_vae(neo, ANIMA_REPO, shared)
    parts = {**anima_transformer(neo, seed), **qwen3_text_encoder(neo, seed)}
    parts.update({"first_stage_model." + k: fixed(v) for k, v in vae.items()})
    return parts, torch.bfloat16


def summary(parts: dict[str, Part]) -> str:
    groups: dict[str, int] = {}
    for k, p in parts.items():
        if k.startswith(("vae.", "first_stage_model.")):
            g = "VAE"
        elif k.startswith(("text_encoders.", "cond_stage_model.")):
            g = "text encoder"
        else:
            g = "LLM adapter" if ".llm_adapter." in k else "transformer"
        groups[g] = groups.get(g, 0) + math.prod(p.shape)
    return ", ".join(f"{g} {n / 1e6:.1f} M" for g, n in groups.items()) + " parameters"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("families", nargs="*", choices=FAMILIES)
    ap.add_argument("--neo", required=True, help="Forge Neo checkout (its backend and bundled configs)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--shared-tools", required=True, help="folder of make_transparent_vae.py (K, B, C reused)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--gain-vae",
        metavar="FILE",
        help="also write the transparent Wan VAE with gain 16 as a standalone VAE module (models/VAE)",
    )
    a = ap.parse_args()
    out, shared, neo = os.path.abspath(a.out), os.path.abspath(a.shared_tools), os.path.abspath(a.neo)
    import_neo(neo)
    os.makedirs(out, exist_ok=True)
    if a.gain_vae:
        from safetensors.torch import save_file

        vae = transparent_wan_vae(neo, QWEN_REPO, shared, 16.0)
        save_file(vae, a.gain_vae, metadata={"transparent_vae": "Wan 2.1 layout, gain 16"})
        print(f"wrote {a.gain_vae}: {len(vae)} tensors")
    for family in a.families:
        parts, dit_dtype = build(family, neo, shared, a.seed)
        counts = summary(parts)
        final = os.path.join(out, f"random-{family}.safetensors")
        partial = os.path.join(out, f"random-{family}.partial.safetensors")
        try:
            write_safetensors(partial, parts, {"random": family})
            del parts
            set_unet_storage(dit_dtype)
            with torch.inference_mode():
                if family == "wan":
                    results = check_wan(partial)
                elif family.startswith("qwen-image"):
                    results = check_qwen_image(partial, edit=family == "qwen-image-edit")
                else:
                    results = check_anima(partial)
        except BaseException:
            if os.path.exists(partial):
                os.remove(partial)
            raise
        os.replace(partial, final)
        print(f"wrote {final}: {os.path.getsize(final) / 1e9:.2f} GB; {counts}")
        for line in results:
            print("  " + line)


if __name__ == "__main__":
    main()
