"""The documentation is checked like code.

- Every relative link and picture in the README, the changelog and docs/ resolves: the file exists, and a ``#anchor``
  names a heading of the Markdown file it points to (GitHub's heading ids).
- The README's settings table follows the settings table in ``lib_diffdiff/webui/settings.py``, which is the source:
  one row per setting, in its order, with its UI label, API field, infotext key and default.
- The README stays a README: at most 200 lines, install, quick start, settings and API first.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from lib_diffdiff.webui.infotext import INPAINT_CONDITIONINGS
from lib_diffdiff.webui.settings import SETTINGS, DiffDiffArgs

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKDOWN = [
    README,
    ROOT / "CHANGELOG.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "tests" / "tools" / "README.md",
]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HTML_LINK = re.compile(r"<(?:img|a|source)\b[^>]*?\b(?:src|href|srcset)\s*=\s*[\"']([^\"']+)[\"']", re.I)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose(text: str) -> str:
    """The text with code blocks, code spans and HTML comments removed (links there are not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", COMMENT.sub("", text)))


def targets(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    return [m.group(1) for pattern in (INLINE_LINK, REFERENCE, HTML_LINK) for m in pattern.finditer(text)]


def slug(heading: str) -> str:
    """GitHub's id for a heading: the rendered text, lower case, without punctuation, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", COMMENT.sub("", path.read_text(encoding="utf-8")))
    seen: Counter[str] = Counter()
    out = set()
    for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M):
        base = slug(m.group(1))
        out.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return out


def broken_links(path: Path) -> list[str]:
    problems = []
    for target in targets(path):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # a web address: not checked offline
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{target}: no heading with the id {anchor!r} in {linked.name}")
    return problems


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_picture_resolves(path):
    assert path.exists()
    assert not broken_links(path), "\n".join(broken_links(path))


def test_the_link_check_finds_a_broken_file_a_broken_anchor_and_a_broken_picture(tmp_path):
    (tmp_path / "other.md").write_text("# Some heading\n\n## Another one (with punctuation)\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#another-one-with-punctuation) [ok](#page) ![ok](other.md)\n"
        "[web](https://example.com/x) `[code](missing.md)`\n\n```\n[fenced](missing.md)\n```\n\n"
        '[file](missing.md) [anchor](other.md#nowhere) ![picture](missing.png) <img src="gone.png">\n'
        "[same page](#nowhere-here)\n"
    )
    problems = broken_links(page)
    assert len(problems) == 5, problems
    assert {p.split(":")[0] for p in problems} == {
        "missing.md",
        "other.md#nowhere",
        "missing.png",
        "gone.png",
        "#nowhere-here",
    }


def test_docs_pages_are_linked_from_the_readme_or_the_docs_index():
    linked = {
        (page.parent / t.partition("#")[0]).resolve()
        for page in (README, ROOT / "docs" / "README.md")
        for t in targets(page)
        if not SCHEME.match(t)
    }
    orphans = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "README.md" and p not in linked]
    assert not orphans, f"docs pages nobody links to: {orphans}"


# ---- the README's settings table follows lib_diffdiff/webui/settings.py ----


def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"the README has no '## {title}' section"
    return m.group(1)


def settings_table() -> tuple[list[str], list[list[str]]]:
    rows = [line for line in readme_section("Settings").splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in row.strip().strip("|").split(" | ")] for row in rows]
    return cells[0], [r for r in cells[2:]]


def readme_default(value) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value is None:
        return "—"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, tuple):
        return "`[" + ", ".join(f"{v:g}" for v in value) + "]`"
    return f"`{value:g}`"


def test_the_readme_settings_table_has_every_setting_in_order_with_its_label_field_key_and_default():
    header, rows = settings_table()
    assert header == ["UI name", "API field", "infotext key", "default", "what it does"]
    assert all(len(row) == len(header) for row in rows), [row for row in rows if len(row) != len(header)]
    assert [row[1] for row in rows] == [f"`{s.name}`" for s in SETTINGS], "one row per setting, in the table's order"
    defaults = DiffDiffArgs()
    for setting, (label, _, key, default, what) in zip(SETTINGS, rows):
        assert label == setting.label, setting.name
        assert key == (f"`{setting.infotext}`" if setting.infotext else "—"), setting.name
        assert default == readme_default(getattr(defaults, setting.name)), setting.name
        assert what, setting.name
        for bound in (setting.minimum, setting.maximum):
            if bound is not None:
                assert re.search(rf"(?<![\d.]){re.escape(f'{bound:g}')}(?![\d.])", what), (setting.name, bound)


def test_the_readme_says_which_settings_have_no_xyz_axis_and_names_the_other_infotext_keys():
    section = readme_section("Settings")
    xyz = next(line for line in section.splitlines() if "X/Y/Z" in line)
    assert "every setting but" in xyz
    for setting in SETTINGS:
        if not setting.xyz:
            assert f"*{setting.label}*" in xyz, setting.name
    assert f"`{INPAINT_CONDITIONINGS}`" in section


def test_the_settings_table_check_fails_on_a_wrong_row(monkeypatch):
    header, rows = settings_table()
    broken = [list(r) for r in rows]
    broken[4][3] = "`2`"  # the multiplier's default
    monkeypatch.setattr(sys.modules[__name__], "settings_table", lambda: (header, broken))
    with pytest.raises(AssertionError, match="multiplier"):
        test_the_readme_settings_table_has_every_setting_in_order_with_its_label_field_key_and_default()


# ---- the README stays a README ----


def test_the_readme_is_short_and_starts_with_install_use_settings_and_the_api():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[:4] == ["Install", "Quick start", "Settings", "API"]
    assert headings.index("Troubleshooting") > headings.index("Supported hosts and models")
