"""Flux.1 dev and Chroma at their full size, live: the smoke checks for a host that loads them only at 12 B and 8.9 B
parameters (Forge dfdcbab6 fixes the width and depth, whatever the file's keys say), with random checkpoints in fp8
storage made by tests/tools/make_forge_flux_checkpoint.py (``--chroma``). One model call takes minutes on a CPU, so
only the two properties every other family proves at length: a constant map is img2img bit for bit, and pixels the
map keeps stay exact.

Set DIFFDIFF_WEBUI_URL and DIFFDIFF_TEST_CHECKPOINTS with ``flux-dev-12b=<checkpoint name>`` and/or
``chroma-9b=<checkpoint name>``; each one not named is skipped. Run it alone on that host (about 10 model calls each).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from . import checks
from .checks import generate, grey, infotext
from .test_flow_families import FlowFamily, Run, baked_vae
from .test_model_families import CHECKPOINTS_VARIABLE, checkpoint_title, configured, on_checkpoint
from .webui import URL_VARIABLE, WebUI, block_image, webui_url

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(webui_url() is None, reason=f"{URL_VARIABLE} is not set: no live WebUI to test against"),
]

W = H = 64
STEPS = 4
FAMILIES = {
    "flux-dev-12b": FlowFamily(("Euler",), guidance=True),
    "chroma-9b": FlowFamily(("Euler",), cfg=4.0),
}
"""Each at the CFG its users run: Flux dev distilled (CFG 1, guidance 3.5), Chroma with real CFG."""


@pytest.fixture(scope="module", params=list(FAMILIES))
def run(request):
    name = request.param
    wanted = configured().get(name)
    if wanted is None:
        pytest.skip(f"{CHECKPOINTS_VARIABLE} names no {name} checkpoint")
    webui = WebUI(webui_url())
    webui.request = functools.partial(webui.request, timeout=3600)  # one 12 B call takes minutes on a CPU
    with on_checkpoint(webui, checkpoint_title(webui, wanted)):
        yield Run(name, FAMILIES[name], webui, baked_vae(webui), block_image(W, H, seed=11))


def test_a_constant_map_is_img2img(run):
    """A constant map at 191 and strength 0.8 is img2img at 191/255 * 0.8 (2 of 4 steps each), bit for bit."""
    (plain,), _ = generate(run.webui, run.request(denoising_strength=191 / 255 * 0.8, steps=STEPS))
    assert np.abs(plain - run.source).mean() > 1.0, "plain img2img changed nothing: the check would prove nothing"
    args = {"enabled": True, "map": grey(np.full((H, W), 191))}
    (out,), info = generate(run.webui, run.request(args, denoising_strength=0.8, steps=STEPS))
    assert np.array_equal(out, plain)
    assert "Differential diffusion: True" in infotext(info)


def test_held_pixels_are_exact(run):
    """A half map at strength 1 with `preserve` off (4 model calls): the black half exact, the white half made."""
    status, problem = checks.held_half(
        run.webui, run.vae, lambda *a, **k: run.payload(*a, steps=STEPS, **k), run.image, "Euler"
    )
    assert status == 200 and not problem, problem
