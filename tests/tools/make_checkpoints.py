#!/usr/bin/env python3
"""Write full-size random-weight checkpoints of several Stable Diffusion families for the live-host tests.

Each file has the family's ORIGINAL single-file key layout (ldm / sgm, as the official releases), fp16
safetensors, because both hosts pick the architecture from the keys and tensor shapes. The model is the real
one, instantiated from the WebUI checkout's own configs with random initialisation (no downloads: the CLIP-L
config/tokenizer come from the offline HF cache made by make_clip_tokenizer_cache.py, open_clip is built with
pretrained=None and without its vision tower). UNet layers that ldm/sgm initialise to zero (zero_module: out
conv, ResBlock out convs, proj_out) get small random values so the UNet output is not trivially zero, and the
final text LayerNorm(s) get a random weight/bias (with the default ones/zeros the text output mean is exactly ~0
and the WebUIs' emphasis mean-restoration can divide 0 by 0: all-NaN conditioning in A1111). Parameters
are stored fp16, buffers (noise schedules, denoiser.sigmas) fp32. Before saving, the fp16-rounded weights are
checked in fp32 (as the hosts run with --no-half / --all-in-fp32): VAE encode/decode, text encoder(s), one UNet
forward at a small size, plus each family's prediction-type rule (below).

Usage (A1111 venv; HF_HOME=/work/hosts/hf_home HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1):
    python tests/tools/make_checkpoints.py --webui /work/hosts/a1111 --out DIR FAMILY [FAMILY...] [--seed N]
        [--forge /work/hosts/forge]    # optional: also evaluate Forge's own detection (huggingface_guess)
FAMILY: sd15-inpaint sd2-768v sdxl sdxl-vpred sdxl-inpaint (or "all"). Output: DIR/random-<FAMILY>.safetensors,
plus DIR/random-sd2-768v.yaml and DIR/random-sdxl-vpred.yaml (same stem; link them beside the checkpoint in
each host's models/Stable-diffusion/, because both hosts look for <checkpoint path without extension>.yaml
using the path in the models folder, symlinks are not resolved).
The SDXL families share one instantiated model (same text encoders, VAE and UNet; sdxl-inpaint gets its own
9-channel input conv), but every output is a standalone file. Peak RAM ~16 GB (SDXL in fp32).

Families and the host rules they have to satisfy (A1111 = v1.10.1 at /work/hosts/a1111, Forge = commit
dfdcbab6 at /work/hosts/forge with its repositories/huggingface_guess):
  sd15-inpaint  A1111 configs/v1-inpainting-inference.yaml (LatentInpaintDiffusion, UNet in_channels 9).
                A1111: modules/sd_models_config.py:103-105 (input_blocks.0.0.weight.shape[1] == 9 -> that
                config). Forge: huggingface_guess SD15 (context_dim 768), in_channels read from the shape.
  sd2-768v      ldm configs/stable-diffusion/v2-inference-v.yaml, OpenCLIP ViT-H-14 text encoder.
                A1111: sd_models_config.py:95-101 picks v2-inference-v.yaml when
                is_using_v_parameterization_for_sd2() (sd_models_config.py:29-69) is true: it runs the UNet on
                x = 0.5 (1x4x8x8), t = 999, context = 0.5 (1x2x1024) and requires mean(out - x) < -1. The tool
                shifts the UNet's out conv bias so that this mean is -2 (checked after fp16 rounding).
                Forge: repositories/huggingface_guess/huggingface_guess/model_list.py:168-174 (SD20.model_type)
                says V_PREDICTION when std(output_blocks.11.1.transformer_blocks.0.norm1.bias) > 0.09; the tool
                draws that LayerNorm bias with std 0.2. BUT backend/loader.py:461 calls guess.model_type(sd)
                without the "model.diffusion_model." prefix, so that key is never found and Forge falls back to
                EPS for every ldm-layout SD2 file (the scheduler's v_prediction from
                backend/huggingface/stabilityai/stable-diffusion-2-1 is overwritten with 'epsilon',
                loader.py:563-567). The only way to make Forge use v is the .yaml beside the checkpoint
                (loader.py:530-567: model.params.parameterization == 'v'), so the tool also writes
                random-sd2-768v.yaml (a copy of v2-inference-v.yaml). A1111 then uses that yaml as the config
                (sd_models_config.py:117-136, find_checkpoint_config[_near_filename]) and gets parameterization v
                as well; its weight rule (above) also holds, for a copy without the yaml.
  sdxl          generative-models configs/inference/sd_xl_base.yaml (sgm DiffusionEngine), CLIP-L +
                OpenCLIP ViT-bigG-14. A1111: sd_models_config.py:80-84 (conditioner.embedders.1.model.ln_final
                present, in_channels 4). Forge: huggingface_guess SDXL (context_dim 2048, adm 2816).
  sdxl-vpred    The sdxl weights plus a state-dict marker key "v_pred" (empty fp32 tensor) and
                random-sdxl-vpred.yaml beside it (sd_xl_base.yaml with the denoiser's scaling_config
                VScaling and weighting_config VWeighting).
                A1111 has no key-based rule for SDXL: sd_models_config.py:117-136 uses <stem>.yaml if it exists,
                and modules/sd_models_xl.py:99 (extend_sdxl) sets parameterization = "v" iff
                model.denoiser.scaling is sgm...denoiser_scaling.VScaling -> needs the yaml.
                Forge: backend/loader.py:530-567 reads <stem>.yaml and uses v_prediction when
                model.params.parameterization == 'v' or model.params.denoiser_config.params.scaling_config.target
                ends with ".VScaling" (yaml wins over the guess); without a yaml, loader.py:461 ->
                huggingface_guess model_list.py:275-290 (SDXL.model_type) gives V_PREDICTION when "v_pred" is
                in the state dict. Both are written, so Forge says v either way. "ztsnr" (loader.py:462 ->
                modules/processing.py:985, zero-terminal-SNR sigmas in Forge only) is deliberately NOT written:
                A1111 1.10 has no such key rule, so the two hosts would sample different schedules.
  sdxl-inpaint  A1111 configs/sd_xl_inpaint.yaml (sd_xl_base with UNet in_channels 9; sd_models_config.py:80-82).
                Forge: huggingface_guess SDXL with in_channels 9 from the shape.
"""

import argparse
import gc
import math
import os
import shutil
import sys
import time

FAMILIES = ["sd15-inpaint", "sd2-768v", "sdxl", "sdxl-vpred", "sdxl-inpaint"]
SD2_V_TARGET = -2.0  # A1111 rule value we aim for (must be < -1)
SD2_NORM1_BIAS_STD = 0.2  # Forge rule needs > 0.09


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--webui", required=True, help="A1111 checkout (configs/, repositories/)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--forge", help="optional Forge checkout: evaluate its huggingface_guess detection too")
    ap.add_argument("families", nargs="+", choices=FAMILIES + ["all"])
    a = ap.parse_args()
    fams = FAMILIES if "all" in a.families else [f for f in FAMILIES if f in a.families]
    return a, fams


A, FAMS = parse_args()
WEBUI = os.path.abspath(A.webui)
LDM_REPO = os.path.join(WEBUI, "repositories", "stable-diffusion-stability-ai")
SGM_REPO = os.path.join(WEBUI, "repositories", "generative-models")
sys.path.insert(0, LDM_REPO)
sys.path.insert(0, SGM_REPO)

import pytorch_lightning  # noqa: E402
import torch  # noqa: E402

sys.modules["pytorch_lightning.utilities.distributed"] = pytorch_lightning.utilities.rank_zero
import open_clip  # noqa: E402
import open_clip.model  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel  # noqa: E402

# ---- no downloads: CLIP-L from its cached config, open_clip with pretrained=None and no vision tower ----
CLIPTextModel.from_pretrained = lambda name, *a, **kw: CLIPTextModel(CLIPTextConfig.from_pretrained(name))


class _NoVisual(torch.nn.Module):
    """Stand-in for open_clip's vision tower (ldm/sgm delete model.visual right after creating the model)."""

    image_size = 224


open_clip.model._build_vision_tower = lambda *a, **kw: _NoVisual()
_orig_cmat = open_clip.create_model_and_transforms


def _cmat_no_download(model_name, pretrained=None, *a, **kw):
    return _orig_cmat(model_name, None, *a, **kw)


open_clip.create_model_and_transforms = _cmat_no_download
torch.set_num_threads(max(1, os.cpu_count() or 1))


def log(*a):
    print(*a, flush=True)


def stat(name, t):
    t = t.float()
    ok = bool(torch.isfinite(t).all())
    log(
        f"  {name}: shape={tuple(t.shape)} finite={ok} mean={t.mean():.4f} std={t.std():.4f} absmax={t.abs().max():.4f}"
    )
    assert ok, name


def reinit_zero_weights(unet, gen):
    """zero_module()-initialised UNet weights -> N(0, (0.5/sqrt(fan_in))^2), as make_random_sd15.py."""
    n = 0
    with torch.no_grad():
        for _, p in unet.named_parameters():
            if p.ndim > 1 and torch.count_nonzero(p) == 0:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.5 / math.sqrt(p[0].numel())))
                n += 1
    log(f"  re-initialised {n} zero weight tensors")


def randomise_final_text_norm(ln, gen, name):
    """Final text LayerNorm weight 1 + N(0, 0.1^2), bias 0.05 + N(0, 0.1^2) instead of the default ones/zeros.
    With ones/zeros every output token has mean exactly ~0, so the WebUIs' emphasis "restore the original mean"
    step (A1111 modules/sd_emphasis.py EmphasisOriginal: z * (z.mean() / (z * multipliers).mean())) can hit 0/0 and
    turn the whole conditioning into NaN (seen with the empty negative prompt). Trained encoders have a non-zero
    bias, so the output mean is well away from 0."""
    with torch.no_grad():
        ln.weight.copy_(1.0 + 0.1 * torch.randn(ln.weight.shape, generator=gen))
        ln.bias.copy_(0.05 + 0.1 * torch.randn(ln.bias.shape, generator=gen))
    log(f"  randomised final text LayerNorm {name}")


def round_params_fp16(model):
    """Replace every float parameter by its fp16-rounded value (kept fp32), one tensor at a time."""
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point():
                p.data = p.data.half().float()


def params_to_fp16(model):
    """In place, tensor by tensor (peak RAM stays ~ the fp32 model): params fp16, buffers keep fp32."""
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point():
                p.data = p.data.half()


def state_dict_for_saving(model):
    return {k: v.detach().contiguous() for k, v in model.state_dict().items()}


def save(sd, family, extra_note=""):
    path = os.path.join(A.out, f"random-{family}.safetensors")
    t0 = time.time()
    # one metadata key only: safetensors writes a multi-key dict in random order (the file hash would vary)
    note = f"RANDOM WEIGHTS - {family} architecture for testing only; seed {A.seed}; tests/tools/make_checkpoints.py"
    save_file(sd, path, metadata={"note": note + extra_note})
    n16 = sum(1 for v in sd.values() if v.dtype == torch.float16)
    size = os.path.getsize(path) / 2**30
    log(f"saved {path}: {len(sd)} tensors ({n16} fp16), {size:.2f} GiB, {time.time() - t0:.1f}s")
    return path


def load_cfg(path):
    cfg = OmegaConf.load(path)
    p = cfg.model.params
    if "use_ema" not in p:  # as A1111 repair_config (sd_models.py): no model_ema.* copy
        p.use_ema = False
    for key in ("unet_config", "network_config"):
        if key in p:
            p[key].params.use_checkpoint = False
            if "use_fp16" in p[key].params:
                p[key].params.use_fp16 = False
    dd = p.first_stage_config.params.ddconfig
    if dd.get("attn_type", None) == "vanilla-xformers":  # as A1111 repair_config without xformers
        dd.attn_type = "vanilla"
    return cfg


# ------------------------------------------------------------------ Forge detection (optional)
def forge_guess(sd):
    if not A.forge:
        return None
    hg = os.path.join(os.path.abspath(A.forge), "repositories", "huggingface_guess")
    if hg not in sys.path:
        sys.path.insert(0, hg)
    import huggingface_guess

    g = huggingface_guess.guess(sd)  # backend/loader.py:452
    mt = g.model_type(sd)  # backend/loader.py:461 (no prefix, exactly as Forge)
    return g, mt


def forge_yaml_rule(yaml_path):
    """backend/loader.py:530-567 on the yaml beside the checkpoint ('' = no override)."""
    import yaml

    with open(yaml_path) as f:
        y = yaml.safe_load(f)
    t = y.get("model", {}).get("params", {}).get("parameterization", "") or y.get("model", {}).get("params", {}).get(
        "denoiser_config", {}
    ).get("params", {}).get("scaling_config", {}).get("target", "")
    return "v_prediction" if (t == "v" or t.endswith(".VScaling")) else ""


# ------------------------------------------------------------------ ldm families
def ldm_checks(model, ctx_fn, in9=False):
    with torch.no_grad():
        x = torch.rand(1, 3, 128, 128) * 2 - 1
        z = model.get_first_stage_encoding(model.encode_first_stage(x))
        dec = model.decode_first_stage(z)
        ctx = ctx_fn()
        ctx_empty = ctx_fn("")
        unet_in = z
        if in9:  # [noisy latent 4, mask 1, masked-image latent 4] (A1111 / ldm hybrid conditioning)
            unet_in = torch.cat([z, torch.ones_like(z[:, :1]), z], 1)
        out = model.model.diffusion_model(unet_in, torch.tensor([500]), context=ctx)
    for nm, t in [
        ("vae_latent(scaled)", z),
        ("vae_decoded", dec),
        ("text_ctx", ctx),
        ("text_ctx(empty prompt)", ctx_empty),
        ("unet_out", out),
    ]:
        stat(nm, t)
    emphasis_mean_check(ctx, ctx_empty)


def emphasis_mean_check(*ctxs):
    """The WebUIs divide by the conditioning's mean (emphasis); it must be clearly non-zero."""
    means = [c.float().mean().item() for c in ctxs]
    log(f"  text output means (WebUI emphasis divides by these): {', '.join(f'{m:.4f}' for m in means)}")
    assert all(abs(m) > 1e-3 for m in means), means


def a1111_sd2_v_rule(unet):
    """modules/sd_models_config.py:29-69 on our UNet (same architecture and params), fp32."""
    with torch.no_grad():
        test_cond = torch.ones((1, 2, 1024)) * 0.5
        x_test = torch.ones((1, 4, 8, 8)) * 0.5
        return (unet(x_test, torch.asarray([999]), context=test_cond) - x_test).mean().item()


def make_ldm(family):
    from ldm.util import instantiate_from_config

    t0 = time.time()
    gen = torch.Generator().manual_seed(A.seed)
    torch.manual_seed(A.seed)
    if family == "sd15-inpaint":
        cfg_path = os.path.join(WEBUI, "configs", "v1-inpainting-inference.yaml")
    else:
        cfg_path = os.path.join(LDM_REPO, "configs", "stable-diffusion", "v2-inference-v.yaml")
    model = instantiate_from_config(load_cfg(cfg_path).model).eval()
    log(f"[{family}] instantiated {type(model).__name__} from {cfg_path} in {time.time() - t0:.1f}s")
    unet = model.model.diffusion_model
    reinit_zero_weights(unet, gen)

    if family == "sd15-inpaint":
        tok = model.cond_stage_model.tokenizer
        randomise_final_text_norm(
            model.cond_stage_model.transformer.text_model.final_layer_norm,
            gen,
            "cond_stage_model.transformer.text_model.final_layer_norm",
        )

        te = model.cond_stage_model.transformer

        def ctx_fn(prompt="a photo of a cat"):
            ids = tok([prompt], truncation=True, max_length=77, padding="max_length", return_tensors="pt").input_ids
            return te(input_ids=ids).last_hidden_state

        round_params_fp16(model)
        ldm_checks(model, ctx_fn, in9=True)
    else:
        enc = model.cond_stage_model
        enc.device = "cpu"
        randomise_final_text_norm(enc.model.ln_final, gen, "cond_stage_model.model.ln_final")
        with torch.no_grad():
            # Forge's rule (huggingface_guess SD20.model_type): std of this LayerNorm bias > 0.09
            nb = unet.output_blocks[11][1].transformer_blocks[0].norm1.bias
            nb.copy_(torch.randn(nb.shape, generator=gen) * SD2_NORM1_BIAS_STD)
            # A1111's rule: mean(unet(0.5, t=999, ctx=0.5) - 0.5) < -1; shift the out conv bias to hit the target
            m0 = a1111_sd2_v_rule(unet)
            unet.out[-1].bias.add_(SD2_V_TARGET - m0)
        round_params_fp16(model)
        ldm_checks(model, lambda prompt="a photo of a cat": enc([prompt]))
        v = a1111_sd2_v_rule(unet)
        log(
            f"  A1111 is_using_v_parameterization_for_sd2: mean(out - x) = {v:.4f} (before shift {m0:.4f}) "
            f"-> {'v' if v < -1 else 'eps'}"
        )
        assert v < -1.5, v
        s = torch.std(nb.detach().half().float(), unbiased=False).item()
        log(f"  Forge SD20.model_type rule: std(output_blocks.11.1...norm1.bias) = {s:.4f} (> 0.09 -> V_PREDICTION)")
        assert s > 0.12, s

    params_to_fp16(model)
    sd = state_dict_for_saving(model)
    del model, unet
    gc.collect()
    if family == "sd2-768v":
        g = forge_guess(sd)
        if g:
            log(
                f"  Forge huggingface_guess: {type(g[0]).__name__}, model_type as loader.py:461 calls it: {g[1].name}; "
                f"with the unet prefix: {g[0].model_type(sd, 'model.diffusion_model.').name}"
            )
        yml = os.path.join(A.out, "random-sd2-768v.yaml")
        shutil.copyfile(cfg_path, yml)
        log(f"wrote {yml} (copy of {cfg_path}); Forge yaml rule -> {forge_yaml_rule(yml) or 'no override'}")
    else:
        g = forge_guess(sd)
        if g:
            log(
                f"  Forge huggingface_guess: {type(g[0]).__name__}, in_channels {g[0].unet_config.get('in_channels')}, "
                f"model_type {g[1].name}"
            )
    save(sd, family)
    log(f"[{family}] total {time.time() - t0:.1f}s")
    del sd
    gc.collect()


# ------------------------------------------------------------------ sgm (SDXL) families
def make_sdxl(families):
    from sgm.util import instantiate_from_config

    t0 = time.time()
    gen = torch.Generator().manual_seed(A.seed)
    torch.manual_seed(A.seed)
    base_yaml = os.path.join(SGM_REPO, "configs", "inference", "sd_xl_base.yaml")
    model = instantiate_from_config(load_cfg(base_yaml).model).eval()
    log(f"[sdxl] instantiated {type(model).__name__} from {base_yaml} in {time.time() - t0:.1f}s")
    unet = model.model.diffusion_model
    reinit_zero_weights(unet, gen)
    for e in model.conditioner.embedders:
        if hasattr(e, "device"):
            e.device = "cpu"
    randomise_final_text_norm(
        model.conditioner.embedders[0].transformer.text_model.final_layer_norm,
        gen,
        "conditioner.embedders.0.transformer.text_model.final_layer_norm",
    )
    randomise_final_text_norm(
        model.conditioner.embedders[1].model.ln_final, gen, "conditioner.embedders.1.model.ln_final"
    )
    conv4 = unet.input_blocks[0][0]
    conv9 = None
    if "sdxl-inpaint" in families:  # fresh 9-channel input conv (default torch init), bias shared
        torch.manual_seed(A.seed + 9)
        conv9 = torch.nn.Conv2d(9, conv4.out_channels, 3, padding=1)
        with torch.no_grad():
            conv9.bias.copy_(conv4.bias)
    round_params_fp16(model)
    if conv9 is not None:
        round_params_fp16(conv9)

    with torch.no_grad():
        x = torch.rand(1, 3, 128, 128) * 2 - 1
        z = model.encode_first_stage(x)
        dec = model.decode_first_stage(z)
        batch = {
            "txt": ["a photo of a cat"],
            "original_size_as_tuple": torch.tensor([[256, 256]]),
            "crop_coords_top_left": torch.tensor([[0, 0]]),
            "target_size_as_tuple": torch.tensor([[256, 256]]),
        }
        c = model.conditioner(batch)
        c_empty = model.conditioner(dict(batch, txt=[""]))
        lat = torch.randn(1, 4, 32, 32, generator=gen)
        out = unet(lat, timesteps=torch.tensor([500]), context=c["crossattn"], y=c["vector"])
        stats = [
            ("vae_latent(scaled)", z),
            ("vae_decoded", dec),
            ("crossattn(CLIP-L+bigG)", c["crossattn"]),
            ("vector(pooled+sizes)", c["vector"]),
            ("unet_out(4ch, 256px)", out),
        ]
        if conv9 is not None:
            unet.input_blocks[0][0] = conv9
            out9 = unet(
                torch.cat([lat, torch.ones_like(lat[:, :1]), lat], 1),
                timesteps=torch.tensor([500]),
                context=c["crossattn"],
                y=c["vector"],
            )
            unet.input_blocks[0][0] = conv4
            stats.append(("unet_out(9ch inpaint, 256px)", out9))
    stats[3:3] = [("crossattn(empty prompt)", c_empty["crossattn"]), ("vector(empty prompt)", c_empty["vector"])]
    log("[sdxl] checks (fp16-rounded weights, fp32 compute):")
    for nm, t in stats:
        stat(nm, t)
    emphasis_mean_check(
        c["crossattn"][..., :768],
        c["crossattn"][..., 768:],
        c_empty["crossattn"][..., :768],
        c_empty["crossattn"][..., 768:],
    )

    params_to_fp16(model)
    sd = state_dict_for_saving(model)
    del model, unet
    gc.collect()
    g = forge_guess(sd)
    if g:
        log(f"  Forge huggingface_guess (sdxl): {type(g[0]).__name__}, model_type {g[1].name}")

    if "sdxl" in families:
        save(sd, "sdxl")
    if "sdxl-vpred" in families:
        vcfg = OmegaConf.load(base_yaml)
        dp = vcfg.model.params.denoiser_config.params
        dp.scaling_config.target = "sgm.modules.diffusionmodules.denoiser_scaling.VScaling"
        dp.weighting_config.target = "sgm.modules.diffusionmodules.denoiser_weighting.VWeighting"
        yml = os.path.join(A.out, "random-sdxl-vpred.yaml")
        OmegaConf.save(vcfg, yml)
        # A1111's rule: sd_models_xl.py:99 isinstance(model.denoiser.scaling, VScaling), denoiser built from the yaml
        import sgm.modules.diffusionmodules.denoiser_scaling as dsc

        den = instantiate_from_config(OmegaConf.load(yml).model.params.denoiser_config)
        a1111_v = isinstance(den.scaling, dsc.VScaling)
        log(
            f"wrote {yml}: A1111 parameterization -> {'v' if a1111_v else 'eps'}; "
            f"Forge yaml rule -> {forge_yaml_rule(yml) or 'no override'}"
        )
        assert a1111_v
        vsd = dict(sd)
        vsd["v_pred"] = torch.zeros(0)  # marker key, as v-pred SDXL releases carry it (empty tensor)
        g = forge_guess(vsd)
        if g:
            log(f"  Forge huggingface_guess (sdxl-vpred, no yaml): {type(g[0]).__name__}, model_type {g[1].name}")
            assert g[1].name == "V_PREDICTION"
        save(vsd, "sdxl-vpred")
        del vsd
    if "sdxl-inpaint" in families:
        isd = dict(sd)
        isd["model.diffusion_model.input_blocks.0.0.weight"] = conv9.weight.detach().half().contiguous()
        g = forge_guess(isd)
        if g:
            log(
                f"  Forge huggingface_guess (sdxl-inpaint): {type(g[0]).__name__}, in_channels "
                f"{g[0].unet_config.get('in_channels')}, model_type {g[1].name}"
            )
        save(isd, "sdxl-inpaint")
        del isd
    log(f"[sdxl] total {time.time() - t0:.1f}s")
    del sd
    gc.collect()


def main():
    os.makedirs(A.out, exist_ok=True)
    t0 = time.time()
    for fam in ("sd15-inpaint", "sd2-768v"):
        if fam in FAMS:
            make_ldm(fam)
    xl = [f for f in FAMS if f.startswith("sdxl")]
    if xl:
        make_sdxl(xl)
    log(f"done in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
