"""The release files: one version (lib_diffdiff/version.py) that nothing else spells out, a changelog whose newest
section is that version, the version's infotext key (only when enabled, harmless to PNG Info's paste), metadata.ini
as the WebUI reads it, and the entry for the WebUI's extension index."""

from __future__ import annotations

import base64
import configparser
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from fake_webui import load_script
from PIL import Image
from test_glue import fake_p

import lib_diffdiff
from lib_diffdiff.version import __version__
from lib_diffdiff.webui.infotext import (
    INFOTEXT_KEYS,
    INPAINT_CONDITIONINGS,
    VERSION_KEY,
    drop_infotext,
    infotext_params,
    ui_value,
)
from lib_diffdiff.webui.settings import SETTINGS, DiffDiffArgs

ROOT = Path(__file__).resolve().parents[1]
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
ENTRY = ROOT / "extension-index" / "sd-webui-differential-diffusion.json"

INDEX_TAGS = {
    "script", "localization", "tab", "dropdown", "ads", "installed", "training", "models", "UI related",
    "prompting", "editing", "manipulations", "online", "animation", "query", "science", "extras",
}  # fmt: skip
"""The tags of AUTOMATIC1111/stable-diffusion-webui-extensions (its tags.json); "installed" is the WebUI's own."""


# ---- the version ----


def test_the_version_is_semantic_and_lib_diffdiff_carries_it():
    assert SEMVER.match(__version__), __version__
    assert lib_diffdiff.__version__ == __version__


def test_pyproject_reads_the_version_from_version_py():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lib_diffdiff.version.__version__"}


def test_no_other_file_spells_out_the_version():
    pattern = re.compile(rf"(?<![\d.]){re.escape(__version__)}(?![\d.])")
    skip = {ROOT / "lib_diffdiff" / "version.py", ROOT / "CHANGELOG.md"}
    suffixes = {".py", ".toml", ".ini", ".json", ".js", ".cfg", ".sh", ".md", ".txt", ".css"}
    found = []
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if parts[0].startswith(".") or "node_modules" in parts or path in skip or path.suffix not in suffixes:
            continue
        if path.is_file() and pattern.search(path.read_text(encoding="utf-8", errors="replace")):
            found.append(str(path.relative_to(ROOT)))
    assert not found, f"the version is written in lib_diffdiff/version.py only; also found in {found}"


def test_the_changelog_s_newest_section_is_this_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\] - (\S+)$", text, re.M)
    assert headings, "CHANGELOG.md has '## [X.Y.Z] - YYYY-MM-DD' (or '- Unreleased') sections"
    assert headings[0][0] == __version__
    for version, date in headings:
        assert SEMVER.match(version) and re.match(r"^(\d{4}-\d{2}-\d{2}|Unreleased)$", date), (version, date)
    assert len({v for v, _ in headings}) == len(headings)


# ---- the version in the infotext ----


def test_the_version_key_is_written_only_for_an_enabled_run():
    assert infotext_params(DiffDiffArgs(enabled=True))[VERSION_KEY] == __version__
    assert VERSION_KEY not in infotext_params(DiffDiffArgs(enabled=False))


def a1111_infotext(params: dict[str, str]) -> str:
    """The parameters line as A1111 1.10 writes it (modules/processing.py create_infotext, infotext_utils.quote)."""

    def quote(text: str) -> str:
        return (
            text if "," not in text and "\n" not in text and ":" not in text else json.dumps(text, ensure_ascii=False)
        )

    return ", ".join(f"{k}: {quote(str(v))}" for k, v in {"Steps": "20", "Seed": "1", **params}.items())


def a1111_parse(line: str) -> dict[str, str]:
    """The key-value part of A1111 1.10's parse_generation_parameters (modules/infotext_utils.py, re_param)."""
    re_param = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
    out = {}
    for k, v in re_param.findall(line):
        out[k] = json.loads(v) if v[:1] == '"' and v[-1:] == '"' else v
    return out


@pytest.mark.parametrize(
    "args",
    [
        DiffDiffArgs(enabled=True),
        DiffDiffArgs(enabled=True, mode="fan", fan_strengths=(0.1, 0.35, 1.0), fan_labels=False, continuous=True),
        DiffDiffArgs(enabled=True, mode="soft inpaint", softness=7.0, gamma=2.0, quantize=4),
    ],
)
def test_pasting_infotext_back_reads_the_same_settings_with_the_version_key(args):
    params = infotext_params(args, "0123456789 0-1")
    with_version = a1111_parse(a1111_infotext(params))
    without = a1111_parse(a1111_infotext({k: v for k, v in params.items() if k != VERSION_KEY}))
    assert with_version[VERSION_KEY] == __version__
    assert {k: v for k, v in with_version.items() if k != VERSION_KEY} == without
    for setting in SETTINGS:
        assert ui_value(setting.name, with_version) == ui_value(setting.name, without), setting.name
    assert ui_value("enabled", with_version) is True


def test_every_infotext_key_is_the_extension_s_and_drop_infotext_removes_them_all():
    assert len(set(INFOTEXT_KEYS)) == len(INFOTEXT_KEYS)
    assert all(k.startswith("Differential diffusion") for k in INFOTEXT_KEYS)
    assert {VERSION_KEY, INPAINT_CONDITIONINGS} <= set(INFOTEXT_KEYS)
    params = {"Steps": 20, **{key: "x" for key in INFOTEXT_KEYS}}
    drop_infotext(params)
    assert params == {"Steps": 20}


def white_png() -> str:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), 255, np.uint8), "L").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_the_script_writes_the_version_when_enabled_and_a_disabled_xyz_cell_drops_it(monkeypatch):
    module, _ = load_script(monkeypatch)
    shared = {"Steps": 20}
    module.Script().process(fake_p(extra_generation_params=shared), {"enabled": True, "map": white_png()})
    assert shared.get(VERSION_KEY) == __version__
    module.Script().process(fake_p(extra_generation_params=shared), {"enabled": False})
    assert shared == {"Steps": 20}


def test_the_panel_shows_the_version(monkeypatch):
    module, _ = load_script(monkeypatch)
    shown = []
    for name in ("Markdown", "HTML"):
        original = getattr(module.gr, name)

        class Recording(original):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                shown.append(" ".join(str(a) for a in (*args, *kwargs.values())))

        monkeypatch.setattr(module.gr, name, Recording)
    module.Script().ui(True)
    assert any(__version__ in text for text in shown)


# ---- metadata.ini and the extension index entry ----


def readme_install() -> tuple[str, str]:
    """(repository URL, folder name) of the README's git clone line."""
    m = re.search(r"^git clone (\S+) extensions/(\S+)$", (ROOT / "README.md").read_text(encoding="utf-8"), re.M)
    assert m, "the README has a 'git clone <url> extensions/<folder>' line"
    return m.group(1), m.group(2)


def test_metadata_ini_declares_the_name_the_readme_installs_under_and_nothing_else():
    config = configparser.ConfigParser()
    assert config.read(ROOT / "metadata.ini", encoding="utf-8")
    assert config.sections() == ["Extension"]
    name = config.get("Extension", "Name")
    assert re.fullmatch(r"[a-z0-9_-]+", name)
    assert name == readme_install()[1]
    assert config.get("Extension", "Requires", fallback="").strip() == ""


def test_the_extension_index_entry_has_the_index_s_fields_and_tags_and_the_readme_s_url():
    entry = json.loads(ENTRY.read_text(encoding="utf-8"))
    assert set(entry) == {"name", "url", "description", "tags"}  # "added" is filled in by the index on merge
    assert entry["name"].strip() and entry["description"].strip()
    assert entry["tags"] and set(entry["tags"]) <= INDEX_TAGS - {"installed"}, entry["tags"]
    assert re.match(r"(https://[^ ]+?)(?:(?:\.git)$|$)", entry["url"])  # the index's own URL check
    assert entry["url"].removesuffix(".git") == readme_install()[0].removesuffix(".git")
