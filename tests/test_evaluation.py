"""The paper's evaluation tool (lib_diffdiff/evaluation) end to end against a fake WebUI API over real HTTP whose
outputs follow each method's expressed strength exactly, or ignore it: the scores have known answers."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from lib_diffdiff.cli import main
from lib_diffdiff.evaluation import patterns as pat
from lib_diffdiff.evaluation.client import Cache, RequestFailed, WebUIClient
from lib_diffdiff.evaluation.distance import choose, lpips_distance
from lib_diffdiff.evaluation.inputs import folder_images, square, synthetic_images
from lib_diffdiff.evaluation.methods import Settings, body
from lib_diffdiff.evaluation.protocol import Plan, run_generations, score
from lib_diffdiff.evaluation.report import Progress
from tests.fake_api import FakeWebUI

SIZE = 32


def abs_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Linear in how far a pixel moved: with the fake's outputs E_M is an affine function of the strength."""
    return np.abs(a - b).mean(axis=2)


def flat_images(count: int, size: int = SIZE) -> list[tuple[str, Image.Image]]:
    """Inputs in [0.3, 0.7]: the fake's moves of +-0.2 never clip."""
    rng = np.random.default_rng(5)
    return [
        (f"flat-{n}", Image.fromarray((rng.uniform(0.3, 0.7, (size, size, 3)) * 255).astype(np.uint8), "RGB"))
        for n in range(count)
    ]


@pytest.fixture
def fake():
    servers = []

    def make(**kwargs) -> FakeWebUI:
        servers.append(FakeWebUI(**kwargs))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def best_binarised_cam(m: np.ndarray, thresholds) -> tuple[float, float]:
    """The best Pearson correlation of a map with its binarisations (what inpaint can express at best)."""
    cut = {t: (m >= t).ravel().astype(float) for t in thresholds}
    values = {t: np.corrcoef(m.ravel(), b)[0, 1] for t, b in cut.items() if b.min() < b.max()}  # not all one side
    t = max(values, key=values.get)
    return values[t], t


# --- patterns -----------------------------------------------------------------------------------------------------


def test_patterns_are_the_documented_maps():
    g = pat.pattern("gradient", 64)
    assert g[:, 0].max() == 0 and g[:, -1].min() == 1 and (np.diff(g, axis=1) > 0).all() and (g == g[0]).all()
    s = pat.pattern("shapes", 64)
    assert set(np.unique(s)) == {0, 0.25, 0.5, 0.75, 1.0}
    assert s[0, 0] == 0 and s[17, 17] == 1.0 and s[17, 46] == 0.75 and s[46, 17] == 0.5 and s[46, 46] == 0.25
    t = pat.pattern("triangles", 64)
    levels, counts = np.unique(t, return_counts=True)
    assert list(levels) == [0.25, 0.5, 0.75, 1.0] and np.abs(counts - 64 * 64 / 4).max() <= 64  # the diagonals
    assert t[1, 32] == 0.25 and t[32, 62] == 0.5 and t[62, 32] == 0.75 and t[32, 1] == 1.0
    with pytest.raises(ValueError, match="unknown pattern"):
        pat.pattern("spiral", 64)
    with pytest.raises(ValueError, match="at least 8"):
        pat.pattern("gradient", 4)


def test_inputs_square_and_synthetic(tmp_path):
    Image.new("RGB", (300, 200), "red").save(tmp_path / "b.png")
    Image.new("RGB", (100, 400), "blue").save(tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    got = folder_images(tmp_path, 64)
    assert [n for n, _ in got] == ["a.jpg", "b.png"] and all(load().size == (64, 64) for _, load in got)
    assert square(Image.new("RGB", (90, 30)), 30).size == (30, 30)
    first, again = synthetic_images(2, 48), synthetic_images(2, 48)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for (_, a), (_, b) in zip(first, again, strict=True))
    assert not np.array_equal(np.asarray(first[0][1]), np.asarray(first[1][1]))
    assert np.asarray(first[0][1]).std() > 20  # structure a perceptual distance can see
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        folder_images(tmp_path / "empty", 64)


def test_request_bodies_say_what_each_method_means():
    image = flat_images(1)[0][1]
    m = pat.pattern("gradient", SIZE)
    settings = Settings(size=SIZE, steps=7)
    dd = body("diffdiff", m, image, 3, settings)
    assert dd["denoising_strength"] == 1.0 and dd["seed"] == 3 and dd["steps"] == 7 and "mask" not in dd
    sent = dd["alwayson_scripts"]["differential diffusion"]["args"][0]
    from tests.fake_api import _grey

    assert sent["enabled"] is True and np.abs(_grey(sent["map"]) - m).max() <= 0.5 / 255
    inp = body("inpaint", m, image, 3, settings, threshold=0.375)
    assert np.array_equal(_grey(inp["mask"]), (m >= 0.375).astype(float)) and inp["mask_blur"] == 0
    assert inp["inpainting_fill"] == 1 and inp["inpaint_full_res"] is False and "alwayson_scripts" not in inp
    soft = body("soft-inpainting", m, image, 3, settings)
    assert np.abs(_grey(soft["mask"]) - m).max() <= 0.5 / 255 and soft["alwayson_scripts"]["soft inpainting"]
    ref = body("img2img", m, image, 3, settings)
    assert ref["denoising_strength"] == pytest.approx(m.mean(), abs=1e-4) and "mask" not in ref
    full = body("inpaint", None, image, 3, settings)
    assert _grey(full["mask"]).min() == 1.0
    extra = body("img2img", m, image, 3, settings, extra={"override_settings": {"sd_vae": "x"}, "steps": 9})
    assert extra["steps"] == 9 and extra["override_settings"] == {"sd_vae": "x"}
    with pytest.raises(ValueError, match="unknown method"):
        body("blended", m, image, 3, settings)


# --- the protocol against a fake WebUI with known answers ---------------------------------------------------------


def run_plan(plan: Plan, urls: list[str], folder, distance=abs_distance, backoff: float = 0.0):
    cache = Cache(folder)
    keys, failures = run_generations(plan, [WebUIClient(u, timeout=30) for u in urls], cache, backoff=backoff)
    return score(plan, keys, cache, distance), failures


def test_scores_have_the_known_answers(fake, tmp_path):
    server = fake(mode="follow")
    thresholds = [0.125, 0.375, 0.5, 0.625, 0.875]
    plan = Plan(flat_images(3), [0, 1], Settings(size=SIZE), thresholds=thresholds)
    results, failures = run_plan(plan, [server.url], tmp_path)
    assert failures == []
    for name in pat.PATTERNS:
        m = pat.pattern(name, SIZE)
        dd, inp, ref = results["diffdiff"][name], results["inpaint"][name], results["img2img"][name]
        # the extension's outputs move each pixel by its map value: the measured map is the map
        assert dd.cam > 0.995, name
        assert np.abs(dd.measured - m).max() < 0.05, name
        # inpaint can only express a binarisation: its best CAM is the best binarisation's correlation
        expected, t = best_binarised_cam(m, thresholds)
        assert inp.cam == pytest.approx(expected, abs=0.01), name
        assert inp.threshold == t and inp.pairs == 6 and inp.missing == 0
        assert set(inp.by_threshold) == set(thresholds)
        assert dd.dam < inp.dam, name
        # the reference's strength is uniform: nothing of the map in it
        assert math.isnan(ref.cam) or abs(ref.cam) < 0.2, name
    # Soft Inpainting's mask is the grey map itself: the fake follows it like the map
    assert results["soft-inpainting"]["gradient"].cam > 0.995
    assert server.served == len({plan.key(j) for j in plan.jobs()})


def test_the_all_change_measurement_removes_a_spatial_bias(fake, tmp_path):
    """Section 5.2.1: a distance's own spatial pattern (here the outputs' blue channel moving by a vertical ramp in
    every answer) is in both measurements and cancels; the biased measurement alone would not follow the map."""
    ramp = np.linspace(0.0, 0.25, SIZE)[:, None] * np.ones((1, SIZE))
    server = fake(mode="follow", bias=ramp)
    plan = Plan(flat_images(2), [0], Settings(size=SIZE), patterns=["shapes"], methods=["diffdiff"])
    results, _ = run_plan(plan, [server.url], tmp_path)
    assert results["diffdiff"]["shapes"].cam > 0.995
    cache = Cache(tmp_path)
    pairs = [(plan.image(j.image), cache.load(plan.key(j))) for j in plan.jobs() if j.pattern == "shapes"]
    from lib_diffdiff.tools.metrics import biased_measurement, cam

    assert cam(pat.pattern("shapes", SIZE), biased_measurement(pairs, abs_distance)) < 0.9


def test_a_method_the_webui_does_not_apply_gets_no_score(fake, tmp_path):
    """Forge's Soft Inpainting returns the input unchanged: no numbers measured on nothing, a note instead."""
    server = fake(identity=lambda b: "soft inpainting" in (b.get("alwayson_scripts") or {}))
    plan = Plan(
        flat_images(2), [0], Settings(size=SIZE), patterns=["gradient"], methods=["diffdiff", "soft-inpainting"]
    )
    cache = Cache(tmp_path)
    keys, _ = run_generations(plan, [WebUIClient(server.url, timeout=30)], cache)
    notes: list[str] = []
    results = score(plan, keys, cache, abs_distance, notes)
    assert "soft-inpainting" not in results and results["diffdiff"]["gradient"].cam > 0.99
    assert len(notes) == 1 and "soft-inpainting" in notes[0] and "unchanged" in notes[0]


def test_outputs_that_ignore_the_map_score_near_zero(fake, tmp_path):
    server = fake(mode="ignore")
    plan = Plan(flat_images(2), [0, 1, 2], Settings(size=SIZE), methods=["diffdiff"])
    results, _ = run_plan(plan, [server.url], tmp_path)
    for name in pat.PATTERNS:
        assert abs(results["diffdiff"][name].cam) < 0.25, name


def test_the_default_distance_ranks_methods_like_the_known_answers(fake, tmp_path):
    """Through DSSIM (not linear in the move) the order still holds: the extension follows the gradient, inpaint
    expresses two strengths, the reference none."""
    server = fake(mode="follow")
    plan = Plan(synthetic_images(3, 48), [0], Settings(size=48), patterns=["gradient"])
    distance, label = choose("dssim")
    results, _ = run_plan(plan, [server.url], tmp_path, distance)
    cams = {method: scores["gradient"].cam for method, scores in results.items()}
    assert cams["diffdiff"] > 0.9 and cams["diffdiff"] > cams["inpaint"] > 0.5
    assert math.isnan(cams["img2img"]) or abs(cams["img2img"]) < cams["inpaint"] - 0.2  # chance, from 3 pictures
    assert "DSSIM" in label


def test_work_spreads_over_webuis_with_the_same_results(fake, tmp_path):
    one, two, alone = fake(), fake(), fake()
    plan = Plan(flat_images(2), [0], Settings(size=SIZE), patterns=["shapes"])
    spread, _ = run_plan(plan, [one.url, two.url], tmp_path / "a")
    single, _ = run_plan(plan, [alone.url], tmp_path / "b")
    assert one.served > 0 and two.served > 0 and one.served + two.served == alone.served
    for method in spread:
        assert spread[method]["shapes"].cam == pytest.approx(single[method]["shapes"].cam, abs=1e-12)


def test_passing_failures_are_retried_and_refusals_reported(fake, tmp_path):
    flaky = fake(fail_once=True)
    plan = Plan(flat_images(1), [0], Settings(size=SIZE), patterns=["gradient"])
    unique = len({plan.key(j) for j in plan.jobs()})
    results, failures = run_plan(plan, [flaky.url], tmp_path / "a", backoff=0.001)
    assert failures == [] and flaky.served == unique and flaky.attempts == 2 * unique
    picky = fake(refuse=lambda b: "soft inpainting" in (b.get("alwayson_scripts") or {}))
    results, failures = run_plan(plan, [picky.url], tmp_path / "b", backoff=0.001)
    soft = [j for j in plan.jobs() if j.method == "soft-inpainting"]
    assert len(failures) == len(soft) and all(f.attempts == 1 and "HTTP 422" in f.error for f in failures)
    assert "soft-inpainting" not in results and "diffdiff" in results  # no output: no score, and it is reported


def test_a_stopped_run_resumes_from_its_cache(fake, tmp_path):
    plan = Plan(flat_images(2), [0], Settings(size=SIZE), patterns=["triangles"], methods=["diffdiff", "inpaint"])
    unique = len({plan.key(j) for j in plan.jobs()})
    dying = fake(die_after=5)
    partial, failures = run_plan(plan, [dying.url], tmp_path / "run", backoff=0.001)
    assert len(failures) == unique - 5  # every request not made is reported, none dropped silently
    assert all("HTTP 503" in f.error for f in failures)
    healthy = fake()
    resumed, failures = run_plan(plan, [healthy.url], tmp_path / "run")
    assert failures == [] and healthy.served == unique - 5
    fresh, _ = run_plan(plan, [fake().url], tmp_path / "fresh")
    for method in fresh:
        assert resumed[method]["triangles"].cam == pytest.approx(fresh[method]["triangles"].cam, abs=1e-12)


def test_a_dead_webui_hands_its_share_to_the_others(fake, tmp_path):
    dead, alive = fake(die_after=0), fake()
    plan = Plan(flat_images(1), [0], Settings(size=SIZE), patterns=["gradient"], methods=["diffdiff", "img2img"])
    _, failures = run_plan(plan, [dead.url, alive.url], tmp_path, backoff=0.001)
    assert failures == [] and alive.served == len({plan.key(j) for j in plan.jobs()})


def test_client_errors_are_clear(fake):
    server = fake(refuse=lambda b: True)
    client = WebUIClient(server.url, timeout=10)
    with pytest.raises(RequestFailed, match="HTTP 422: refused by the fake") as info:
        client.img2img({"init_images": [""], "seed": 0})
    assert info.value.permanent
    with pytest.raises(RequestFailed) as info:
        WebUIClient("http://127.0.0.1:9", timeout=5).checkpoint()
    assert not info.value.permanent


# --- the command ---------------------------------------------------------------------------------------------------


def test_command_writes_table_figure_and_json(fake, tmp_path, capsys):
    server = fake()
    out = tmp_path / "out"
    argv = ["evaluate-webui", "--url", server.url, "--out", str(out), "--synthetic", "2", "--size", "48"]
    argv += ["--steps", "3", "--thresholds", "0.5"]
    code = main([*argv, "--distance", "auto"])
    assert code == 0
    table = (out / "table.md").read_text()
    assert "| CAM (↑) | Differential Diffusion |" in table and "| DAM (↓) | Differential Diffusion |" in table
    assert "Inpaint (best threshold)" in table and "(t=0.5)" in table
    report = json.loads((out / "results.json").read_text())
    assert set(report["results"]) == {"diffdiff", "inpaint", "soft-inpainting", "img2img"}
    assert set(report["results"]["diffdiff"]) == set(pat.PATTERNS)
    assert report["results"]["diffdiff"]["gradient"]["cam"] > 0.9 and report["failures"] == []
    # no lpips here: the fallback says so in every output
    assert "FALLBACK" in report["distance"] and "FALLBACK" in table
    figure = Image.open(out / "measured_maps.png")
    assert figure.width > 3 * 160 and figure.height > 5 * 160
    assert "generations" in capsys.readouterr().err
    # a second run sends nothing: everything is cached
    served = server.served
    assert main([*argv, "--distance", "dssim"]) == 0
    assert server.served == served


def test_command_refuses_mixed_checkpoints_and_missing_scripts(fake, tmp_path, capsys):
    a, b = fake(checkpoint="one.safetensors"), fake(checkpoint="two.safetensors")
    assert main(["evaluate-webui", "--url", a.url, "--url", b.url, "--out", str(tmp_path), "--dry-run"]) == 2
    assert "different checkpoints" in capsys.readouterr().err
    bare = fake(scripts=["differential diffusion"])
    assert main(["evaluate-webui", "--url", bare.url, "--out", str(tmp_path), "--synthetic", "1", "--dry-run"]) == 0
    assert "soft-inpainting left out" in capsys.readouterr().err
    code = main(["evaluate-webui", "--url", bare.url, "--out", str(tmp_path), "--methods", "soft-inpainting"])
    assert code == 2 and "needs the 'soft inpainting' script" in capsys.readouterr().err
    assert main(["evaluate-webui", "--url", "http://127.0.0.1:9", "--out", str(tmp_path), "--dry-run"]) == 2
    assert "did not answer" in capsys.readouterr().err


def test_api_auth_is_sent(fake, tmp_path, capsys):
    server = fake(auth="alice:secret")
    argv = ["evaluate-webui", "--url", server.url, "--out", str(tmp_path), "--synthetic", "1", "--dry-run"]
    assert main(argv) == 2 and "HTTP 401" in capsys.readouterr().err
    assert main([*argv, "--api-auth", "alice:secret"]) == 0


def test_ctrl_c_says_how_to_resume(fake, tmp_path, capsys, monkeypatch):
    from lib_diffdiff.evaluation import command

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "run_generations", interrupted)
    server = fake()
    argv = ["evaluate-webui", "--url", server.url, "--out", str(tmp_path), "--synthetic", "1", "--size", "32"]
    assert main(argv) == 130 and "the same command resumes" in capsys.readouterr().err


def test_progress_line_counts_and_estimates():
    stream = io.StringIO()
    progress = Progress(10, 4, stream)
    progress.update(True)
    progress.update(False)
    line = progress.line(4.0)
    assert "6/10 generations" in line and "1 failed" in line and "2.0 s each" in line and "0 min 08 s left" in line


def test_lpips_adapter_feeds_the_network_its_range():
    import torch

    seen = {}

    def net(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen["range"] = (float(x.min()), float(x.max()), tuple(x.shape))
        return (x - y).abs().mean(dim=1, keepdim=True)

    a, b = np.zeros((8, 6, 3), np.float32), np.ones((8, 6, 3), np.float32)
    d = lpips_distance(net)(a, b)
    assert seen["range"] == (-1.0, -1.0, (1, 3, 8, 6)) and d.shape == (8, 6) and np.allclose(d, 2.0)
    with pytest.raises(ValueError, match="unknown distance"):
        choose("l2")
