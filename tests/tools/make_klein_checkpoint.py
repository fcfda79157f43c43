#!/usr/bin/env python3
"""Write a tiny random-weight Flux.2 Klein 4B single-file checkpoint that Forge Neo loads as Klein 4B and runs.

What: ``OUT/random-flux2-klein-4b.safetensors`` with the three parts Neo requires (``backend/loader.py``
``load_huggingface_component`` asserts more than 16 keys for each): a shrunk Flux.2 transformer, a shrunk Qwen3-4B
text encoder and a transparent Flux.2 VAE, so a live test can check Differential Diffusion's held pixels exactly.
Paths below are relative to the Neo checkout.

Why each shape:
* Transformer (``model.diffusion_model.*``, BFL names, QK norms as ``.scale``, fp32 as the host runs it with
  ``--fp32-unet``): the key ``double_stream_modulation_img.lin.weight`` makes it Flux.2
  (``huggingface_guess/detection.py``: axes [32,32,32,32], theta 2000, 128 output channels, patch 1, no biases, global
  modulation, SiLU-gated MLP, reference latents by index x10), the rest is read from the keys: in_channels 128 and
  hidden size from ``img_in``, context width 7680 (3 x 2560, the text encoder's layers 9/18/27) from ``txt_in``,
  1 double and 0 single blocks by count, no ``guidance_in`` (Klein is distilled). ``model_list.py`` ``Flux2K4B``
  requires hidden size 3072 (4096 would be 9B), so the heads (24 x 128: ``QKNorm`` is an RMSNorm over 128 and the
  attention reshapes to 24 heads) and the qkv/proj Linears are full size. Neo's Linear takes a stored tensor as is
  (``backend/operations.py`` ``ForgeOperations.Linear``), so the Linears whose width only the next Linear sees are
  narrow: the MLPs (inner width 16), the time embedding (inner width 16) and the modulations ([6|3|2, 3072]: their
  outputs are ``chunk``-ed into [B, 1, 1] shift/scale/gate that broadcast). 0.10 B parameters instead of 0.44 B.
* Text encoder (``text_encoders.qwen3_4b.transformer.*``, Neo's ``Qwen3_4B`` names, bf16 for ``--bf16-text-enc``):
  ``Qwen3_4B`` asserts its fixed config (36 layers, 32 query / 8 key-value heads of 128, width 2560, vocabulary
  151936) and the Klein engine runs every layer (``backend/text_processing/klein_engine.py``: hidden states before
  layers 9, 18 and 27, prompt padded to 512 tokens). The attention is fixed (``view(..., heads, head_dim)`` and the q/k
  RMSNorm over 128), the SiLU MLP is narrow (width 16): 1.33 B parameters, 2.7 GB in bf16. Random init std 0.02,
  norms around 1, the embedding with mean 0.01 so the WebUI's emphasis step (``z * (mean / new_mean)``) never divides
  by a mean near 0. The host builds the embedding in fp32 whatever the flag (``ForgeOperations.Embedding`` passes no
  dtype) and copies it (1.6 GB); the bf16 Linears stay in the file's memory map (they do in this tool's check).
* VAE (``vae.*``, Neo's module names, fp32: the construction needs fp32): ``AutoencoderKLFlux2`` (``backend/nn/vae.py``)
  is the ldm AutoencoderKL with 32 channels at /8 and quant_conv 64->64 / post_quant_conv 32->32, then a 2x2
  patchify to 128 channels at /16 (channel 4c + 2pi + pj) and a batch-norm with the stored running mean/var
  (eps 1e-4); ``process_in/out`` are the identity. So it is the shared transparent SD VAE
  (``make_transparent_vae.py``: 8x8 mean pool, nearest upsampling, +0.25 level offset) built with 32 latent channels
  and scale 1, identity quant convs, ``bn.running_mean`` 0 and ``bn.running_var`` 1 - 1e-4 (sqrt(var + eps) is exactly
  1 in fp32). The latent the sampler sees is [B, 128, h/16, w/16]: channels 4c..4c+3 hold colour c's four 8x8 block
  means in [-1, 1] (top-left, top-right, bottom-left, bottom-right), channels 12-127 are 0 (both to ~1e-6: the
  encoder samples its posterior with log-variance -30). Images of 8x8 constant blocks round-trip exactly through the
  WebUI's uint8 truncation, and a 16x16 block (one latent cell: Differential Diffusion's map lives on this /16 grid)
  is unchanged whatever its neighbours are.

The file is written tensor by tensor (every random tensor is made only when written, from a seed derived from its
name, so the same seed gives a byte-identical file) to a hidden temporary name in OUT; it then goes through Neo's own
loader (``split_state_dict``: detection, key split; ``load_huggingface_component``: each part built as the host builds
it, with the flags below) and the checks: detected as ``Flux2K4B``, no missing or unexpected keys, every Linear
loaded, the text encoder on a prompt through Neo's Klein engine (finite, not constant), the VAE through Neo's VAE
patcher and the Flux.2 engine's conversions (latent = block means, exact uint8 round trips, 16x16 locality), the
transformer on that latent with the prompt's context, without and with the latent as reference (finite; the
reference changes the output). Only then is the file renamed to its final name.
Keep "kontext" and "edit" out of the output path (Neo reads variants from the path).

Host flags it needs (Neo's start script with bf16 text-encoder storage instead of fp32):
    --cpu --force-fp32 --fp32-unet --fp32-vae --bf16-text-enc   (VAE must be fp32; K = 2^20 overflows fp16)
With --fp32-text-enc it also runs but the host copies the text encoder's Linears to fp32 (+1.9 GB).

Usage (Forge Neo's venv; 3.4 GB on disk; measured on 2 cores: 1.5 min, peak 2.3 GB anonymous memory plus the
memory-mapped file, RSS 5.2 GB):
    cd /work/hosts/neo/webui && venv/bin/python /work/wt22/tests/tools/make_klein_checkpoint.py \\
        --neo /work/hosts/neo/webui --out /work/hosts/flow --shared-tools /work/shared/tools [--seed N]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import io
import json
import math
import os
import struct
import sys
import zlib
from typing import NamedTuple

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
KLEIN_REPO = "black-forest-labs/FLUX.2-klein-4B"
KLEIN = f"backend/huggingface/{KLEIN_REPO}"
HOST_FLAGS = ["--cpu", "--force-fp32", "--fp32-unet", "--fp32-vae", "--bf16-text-enc"]
FILE_NAME = "random-flux2-klein-4b.safetensors"
DIT_MLP, DIT_TIME, TE_MLP = 16, 16, 16  # narrow Linear widths
BN_EPS = 1e-4  # AutoencoderKLFlux2.bn_eps
DIT_CONFIG = dict(
    in_channels=128, out_channels=128, vec_in_dim=None, context_in_dim=7680, hidden_size=3072, mlp_ratio=3.0,
    num_heads=24, depth=1, depth_single_blocks=0, axes_dim=[32, 32, 32, 32], theta=2000, patch_size=1,
    qkv_bias=False, guidance_embed=False, txt_ids_dims=[3], global_modulation=True, mlp_silu_act=True,
    ops_bias=False, default_ref_method="index", ref_index_scale=10.0,
)  # fmt: skip
ST_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.int64: "I64"}


def import_neo(neo: str) -> None:
    """Make Neo's ``backend`` and ``huggingface_guess`` importable; its args parser reads sys.argv: the host's flags."""
    os.chdir(neo)
    sys.path[:0] = [neo, os.path.join(neo, "modules_forge", "packages")]
    sys.argv = [sys.argv[0], *HOST_FLAGS]


class Lazy(NamedTuple):
    """A random tensor made only when it is written: normal(mean, std) in ``dtype``, seeded by its name."""

    shape: tuple
    dtype: torch.dtype
    mean: float
    std: float
    seed: int

    def make(self) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed)
        return torch.randn(self.shape, generator=gen, dtype=self.dtype).mul_(self.std).add_(self.mean)


def name_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (1 << 62)


def klein_transformer(seed: int) -> dict:
    """Flux.2 with hidden 3072 (``Flux2K4B`` requires it), 1 double block, narrow MLP/time/modulation Linears; fp32."""
    from backend.nn.flux import IntegratedFluxTransformer2DModel

    with torch.device("meta"):
        model = IntegratedFluxTransformer2DModel(**DIT_CONFIG)
    hidden = DIT_CONFIG["hidden_size"]
    out = {}
    for k, v in model.state_dict().items():
        s = tuple(v.shape)
        if k.endswith("_mlp.0.weight"):  # SiLU-gated: chunk(2) of the output, any even width
            s = (2 * DIT_MLP, hidden)
        elif k.endswith("_mlp.2.weight"):
            s = (hidden, DIT_MLP)
        elif k == "time_in.in_layer.weight":
            s = (DIT_TIME, s[1])
        elif k == "time_in.out_layer.weight":
            s = (hidden, DIT_TIME)
        elif k.startswith(("double_stream_modulation_", "single_stream_modulation")):
            s = (s[0] // hidden, hidden)  # chunk(6 | 3) -> [B, 1, 1] each
        elif k == "final_layer.adaLN_modulation.1.weight":
            s = (2, hidden)  # chunk(2) -> shift, scale
        if k.endswith(("query_norm.weight", "key_norm.weight")):  # BFL names; Neo's detection keys on ".scale"
            k = k[: -len("weight")] + "scale"
        mean, std = (1.0, 0.1) if len(s) == 1 else (0.0, 0.02)  # the only 1-D tensors are the QK RMSNorms
        name = "model.diffusion_model." + k
        out[name] = Lazy(s, torch.float32, mean, std, name_seed(seed, name))
    return out


def forge_meta_shapes(model: torch.nn.Module) -> dict:
    """Names and shapes of a model built under Neo's operations on meta (its Linears hold no tensor: read the sizes)."""
    from backend.operations import ForgeOperations

    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for name, m in model.named_modules():
        if isinstance(m, ForgeOperations.Linear):
            shapes[name + ".weight"] = (m.out_features, m.in_features)
    return shapes


def qwen3_4b_narrow(neo: str, seed: int) -> dict:
    """Qwen3-4B as ``Qwen3_4B`` asserts it (36 layers, fixed attention), SiLU MLP narrow; bf16, made lazily."""
    from backend.nn.llm.llama import Qwen3_4B
    from backend.operations import using_forge_operations
    from backend.utils import read_arbitrary_config

    config = read_arbitrary_config(os.path.join(neo, KLEIN, "text_encoder"))
    assert config["hidden_size"] == 2560 and not config["attention_bias"], "not the Qwen3-4B config Neo builds"
    with using_forge_operations(device=torch.device("meta"), dtype=torch.bfloat16):
        model = Qwen3_4B(config)  # ForgeOperations.RMSNorm takes the "add" argument plain torch lacks
    out = {}
    for k, s in forge_meta_shapes(model).items():
        if k.endswith(("mlp.gate_proj.weight", "mlp.up_proj.weight")):
            s = (TE_MLP, s[1])
        elif k.endswith("mlp.down_proj.weight"):
            s = (s[0], TE_MLP)
        if k == "model.embed_tokens.weight":
            mean, std = 0.01, 0.02
        elif len(s) == 1:  # RMSNorm weights (q/k norms, layer norms, the final norm): around 1, never 0
            mean, std = 1.0, 0.1
        else:
            mean, std = 0.0, 0.02
        name = "text_encoders.qwen3_4b.transformer." + k
        out[name] = Lazy(s, torch.bfloat16, mean, std, name_seed(seed, name))
    return out


def klein_vae(shared_tools: str, gain: float = 1.0) -> dict:
    """The shared transparent VAE with 32 latent channels and scale 1 (``process_in/out`` are the identity), the
    identity quant convs ``AutoencoderKLFlux2`` builds (config ``use_quant_conv``), and a batch-norm that is 1:1.
    With ``gain`` G (scale 1 / G) the sampler's latent is G times the block mean: a random model's updates are G
    times smaller against the image and stop clipping it (as make_transparent_vae.py --gain for SD)."""
    path = os.path.join(shared_tools, "make_transparent_vae.py")
    spec = importlib.util.spec_from_file_location("shared_make_transparent_vae", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.Z, mod.SCALE = 32, 1.0 / gain
    sd = mod.build()
    channels = 4 * mod.Z  # 2x2 patchify
    sd["bn.running_mean"] = torch.zeros(channels)
    sd["bn.running_var"] = torch.full((channels,), 1.0 - BN_EPS)
    sd["bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)
    assert torch.equal(torch.sqrt(sd["bn.running_var"] + BN_EPS), torch.ones(channels)), "bn is not 1:1 in fp32"
    return {"vae." + k: v.contiguous() for k, v in sd.items()}


def write_safetensors(path: str, tensors: dict, metadata: dict) -> None:
    """A safetensors file written one tensor at a time (``save_file`` would hold a byte copy of everything)."""
    order = sorted(tensors, key=lambda k: -tensors[k].dtype.itemsize)  # wider dtypes first: aligned offsets
    header, offset = {"__metadata__": metadata}, 0
    for k in order:
        t = tensors[k]
        size = math.prod(t.shape) * t.dtype.itemsize
        header[k] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for k in order:
            t = tensors[k].make() if isinstance(tensors[k], Lazy) else tensors[k]
            f.write(t.contiguous().reshape(-1).view(torch.uint8).numpy())
            del t


def quiet(fn, *args):
    """Run a Neo loader call and fail on the missing/unexpected keys it only prints (``backend/state_dict.py``)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        result = fn(*args)
    printed = buf.getvalue()
    assert "Missing" not in printed and "Unexpected" not in printed, printed
    return result


def webui_uint8(x: torch.Tensor) -> np.ndarray:
    """The WebUI's image conversion (``modules/processing.py``): clamp((x + 1) / 2), x 255, astype(uint8) truncates."""
    x = torch.clamp((x.float() + 1.0) / 2.0, min=0.0, max=1.0)
    return (255.0 * x.cpu().numpy()).astype(np.uint8)


def check_detection(path: str) -> tuple:
    """Neo's ``split_state_dict``: ``huggingface_guess.guess`` must say Flux2K4B (repo FLUX.2-klein-4B)."""
    from backend.loader import split_state_dict

    state_dicts, guess = split_state_dict(path)
    name = type(guess).__name__
    assert name == "Flux2K4B" and guess.huggingface_repo == KLEIN_REPO, (name, guess.huggingface_repo)
    counts = {k: len(v) for k, v in state_dicts.items()}
    assert set(counts) == {"transformer", "vae", "text_encoder"} and min(counts.values()) > 16, counts
    print(f"  detected {name} ({guess.huggingface_repo}), unet_config {guess.unet_config}, keys {counts}")
    return state_dicts, guess


def component(guess, name: str, state_dict) -> torch.nn.Module:
    """One part built exactly as the host builds it (``backend/loader.py`` ``load_huggingface_component``)."""
    from backend.loader import load_huggingface_component

    with open(os.path.join(KLEIN, "model_index.json")) as f:
        lib, cls = json.load(f)[name]
    return quiet(load_huggingface_component, guess, name, lib, cls, KLEIN, state_dict)


def all_linears_loaded(model: torch.nn.Module) -> None:
    from backend.operations import ForgeOperations

    empty = [n for n, m in model.named_modules() if isinstance(m, ForgeOperations.Linear) and m.weight is None]
    assert not empty, f"Linears without weights: {empty[:5]}"


def check_text_encoder(guess, state_dict: dict) -> torch.Tensor:
    """Neo's Klein engine on a prompt (512 tokens, layers 9/18/27, emphasis "Original"): finite, not constant."""
    from backend.text_processing import emphasis
    from backend.text_processing.klein_engine import KleinTextProcessingEngine

    tokenizer = component(guess, "tokenizer", None)
    te = component(guess, "text_encoder", state_dict)
    all_linears_loaded(te)
    linear = te.model.layers[0].self_attn.q_proj.weight
    assert linear.dtype == torch.bfloat16, linear.dtype
    engine = KleinTextProcessingEngine(text_encoder=te, tokenizer=tokenizer)
    engine.emphasis = emphasis.EmphasisOriginal()
    chunks = engine.tokenize_line("a red cat")
    with torch.inference_mode():
        z = engine.process_tokens([chunks[0].tokens], [chunks[0].multipliers])
    assert z.shape == (1, 512, 7680) and torch.isfinite(z).all(), "text encoder output not finite"
    spread = z[0].float().std(dim=0).mean().item()
    assert z.float().std() > 0 and spread > 0, "text encoder output is constant"
    print(f"  text encoder: {tuple(z.shape)} finite, std {z.float().std():.3f}, across tokens {spread:.3f}")
    return z.float()


def check_vae(guess, state_dict: dict) -> torch.Tensor:
    """Neo's VAE patcher with the Flux.2 engine's conversions (``backend/diffusion_engine/flux2.py``): the latent is
    the 8x8 block means on channels 0-11, uint8 round trips are exact, a 16x16 block ignores its neighbours."""
    from backend.patcher.vae import VAE
    from einops import rearrange

    model = component(guess, "vae", state_dict)
    vae = VAE(model=model, is_flux2=True)

    def encode(img: np.ndarray) -> torch.Tensor:  # uint8 HWC -> images_tensor_to_samples -> encode_first_stage
        x = torch.from_numpy(np.moveaxis(img.astype(np.float32) / 255.0, 2, 0))[None] * 2 - 1
        return model.process_in(vae.encode(x.movedim(1, -1) * 0.5 + 0.5))

    def decode(latent: torch.Tensor) -> np.ndarray:  # decode_first_stage -> the WebUI's uint8
        x = vae.decode(model.process_out(latent)).movedim(-1, 1) * 2.0 - 1.0
        return np.moveaxis(webui_uint8(x[0]), 0, 2)

    gen = torch.Generator().manual_seed(7)
    for block in (8, 16):
        cells = torch.randint(0, 256, (64 // block, 64 // block, 3), generator=gen, dtype=torch.uint8)
        img = cells.repeat_interleave(block, 0).repeat_interleave(block, 1).numpy()
        with torch.inference_mode():
            latent = encode(img)
            back = decode(latent)
        x = torch.from_numpy(np.moveaxis(img.astype(np.float32) / 127.5 - 1, 2, 0))[None]
        means = rearrange(torch.nn.functional.avg_pool2d(x, 8), "b c (i pi) (j pj) -> b (c pi pj) i j", pi=2, pj=2)
        assert latent.shape == (1, 128, 4, 4), latent.shape
        err = max((latent[:, :12] - means).abs().max().item(), latent[:, 12:].abs().max().item())
        assert err < 1e-4, f"latent is not the 8x8 block means ({err:.1e})"
        assert np.array_equal(back, img), f"{block}x{block}-block round trip not exact"
        print(f"  VAE {block}x{block} blocks: latent {tuple(latent.shape)} = block means (max err {err:.1e}), exact")
    other = torch.randint(0, 256, (4, 4, 3), generator=gen, dtype=torch.uint8)
    other[1, 2] = cells[1, 2]  # same 16x16 block at rows 16-31, columns 32-47, every neighbour changed
    img2 = other.repeat_interleave(16, 0).repeat_interleave(16, 1).numpy()
    with torch.inference_mode():
        latent2 = encode(img2)
        back2 = decode(latent2)
    assert np.array_equal(back2, img2), "round trip not exact"
    assert (latent2[..., 1, 2] - latent[..., 1, 2]).abs().max() < 1e-5, "a latent cell depends on its neighbours"
    assert np.array_equal(back2[16:32, 32:48], back[16:32, 32:48]), "a 16x16 block depends on its neighbours"
    print("  VAE locality: a 16x16 block with all neighbours changed keeps its latent cell and its pixels")
    return latent


def check_transformer(guess, state_dict: dict, context: torch.Tensor, latent: torch.Tensor) -> None:
    """The transformer as Neo builds it, on the VAE latent with the prompt's context, without and with the latent
    as reference (img2img always adds it, ``flux2.py`` ``get_learned_conditioning``): finite, right shape."""
    from backend.args import dynamic_args

    model = component(guess, "transformer", state_dict)
    all_linears_loaded(model)
    saved = dynamic_args.get("ref_latents")
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(3))
    outs = []
    try:
        for refs in (None, [latent]):
            dynamic_args["ref_latents"] = refs
            with torch.inference_mode():
                out = model(noise.clone(), torch.tensor([0.7]), context=context.to(model.img_in.weight.dtype))
            assert out.shape == latent.shape and torch.isfinite(out).all(), "transformer output not finite"
            outs.append(out)
    finally:
        dynamic_args["ref_latents"] = saved
    change = (outs[1] - outs[0]).abs().max().item()
    assert change > 0, "the reference latent changes nothing"
    print(f"  transformer: {tuple(outs[0].shape)} finite (std {outs[0].std():.3f}); the reference latent moves it by"
          f" up to {change:.3f}")  # fmt: skip


def check(path: str) -> None:
    """Load the written file through Neo's loader and run each part (one at a time, freed after)."""
    state_dicts, guess = check_detection(path)
    context = check_text_encoder(guess, state_dicts.pop("text_encoder"))
    gc.collect()
    latent = check_vae(guess, state_dicts.pop("vae"))
    check_transformer(guess, state_dicts.pop("transformer"), context, latent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--neo", required=True, help="Forge Neo checkout (its backend and bundled configs)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--shared-tools", default=os.path.join(REPO_ROOT, "..", "shared", "tools"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--gain-vae",
        metavar="FILE",
        help="only write the Klein-layout transparent VAE with gain 16 as a standalone VAE module (models/VAE)",
    )
    a = ap.parse_args()
    neo, out, shared = (os.path.abspath(p) for p in (a.neo, a.out, a.shared_tools))
    if a.gain_vae:
        vae = {k[len("vae.") :]: v for k, v in klein_vae(shared, 16.0).items()}
        write_safetensors(a.gain_vae, vae, {"transparent_vae": "Flux.2 layout, 32 channels, gain 16"})
        print(f"wrote {a.gain_vae}: {len(vae)} tensors")
        return
    import_neo(neo)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, FILE_NAME)
    assert "kontext" not in path.lower() and "edit" not in path.lower(), "Neo reads model variants from the path"
    tmp = os.path.join(out, "." + FILE_NAME.replace(".safetensors", ".tmp.safetensors"))

    tensors = {**klein_transformer(a.seed), **klein_vae(shared), **qwen3_4b_narrow(neo, a.seed)}
    params = sum(math.prod(t.shape) for t in tensors.values())
    parts = {p: sum(math.prod(t.shape) for k, t in tensors.items() if k.startswith(p)) / 1e6
             for p in ("model.diffusion_model.", "text_encoders.", "vae.")}  # fmt: skip
    print(f"writing {len(tensors)} tensors, {params / 1e6:.1f} M parameters ({parts})")
    write_safetensors(tmp, tensors, {"random": "flux2-klein-4b", "seed": str(a.seed)})
    del tensors
    gc.collect()
    try:
        check(tmp)
    except BaseException:
        os.remove(tmp)
        raise
    os.replace(tmp, path)
    print(f"wrote {path}: {os.path.getsize(path) / 2**30:.2f} GiB, {params / 1e6:.1f} M parameters")
    print(f"host flags: {' '.join(HOST_FLAGS)}")


if __name__ == "__main__":
    main()
