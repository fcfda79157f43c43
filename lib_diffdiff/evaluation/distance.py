"""The per-pixel perceptual distance of the measurement: LPIPS, as in the paper, when the ``lpips`` package and
its network weights are on the machine; otherwise DSSIM, labelled as a fallback in every output."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..tools.metrics import dssim_map

Distance = Callable[[np.ndarray, np.ndarray], np.ndarray]
DSSIM_LABEL = "DSSIM (1 - SSIM) / 2, sigma 1.5"


def lpips_distance(net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], device: str = "cpu") -> Distance:
    """Wrap a spatial LPIPS network (``lpips.LPIPS(spatial=True)``): it takes NCHW in [-1, 1], gives N1HW."""

    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)[None] * 2 - 1
        y = torch.from_numpy(np.ascontiguousarray(b, np.float32)).permute(2, 0, 1)[None] * 2 - 1
        with torch.no_grad():
            d = net(x.to(device), y.to(device))
        return d.reshape(d.shape[-2:]).float().cpu().numpy()

    return distance


def choose(kind: str = "auto") -> tuple[Distance, str]:
    """(distance, label). ``auto``: LPIPS (AlexNet) if it loads here, else DSSIM, saying why in the label."""
    if kind not in ("auto", "lpips", "dssim"):
        raise ValueError(f"unknown distance {kind!r}: auto, lpips or dssim")
    if kind == "dssim":
        return dssim_map, DSSIM_LABEL
    try:
        import lpips  # noqa: PLC0415 - optional: only a user who has it gets the paper's distance

        device = "cuda" if torch.cuda.is_available() else "cpu"  # thousands of pairs: a GPU here helps
        net = lpips.LPIPS(net="alex", spatial=True, verbose=False).eval().to(device)
    except Exception as e:  # not installed, or its weights cannot be loaded offline
        if kind == "lpips":
            raise ValueError(f"LPIPS is not available here: {type(e).__name__}: {e}") from e
        reason = "not installed" if isinstance(e, ImportError) else f"{type(e).__name__}: {str(e)[:120]}"
        return dssim_map, f"{DSSIM_LABEL} (FALLBACK: LPIPS unavailable, {reason})"
    return lpips_distance(net, device), f"LPIPS (AlexNet, spatial, on {device})"
