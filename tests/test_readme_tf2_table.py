"""The README's "The TF2 Detection Model Zoo" table against the zoo's own files.

Each row names a zoo tarball, the config it ships, the config's feature extractor and input
size, and the zoo page's speed.  The expected values are read from the zoo's files, not from
odflow: the 18 shipped configs in ``tests/fixtures/tf2_zoo/configs/`` (read as text: the
``feature_extractor`` block's ``type`` and the image resizer's size) and the zoo page's table
(``tests/fixtures/tf2_zoo/zoo_table.md``: tarball URL and "Speed (ms)"), so a row copied from its
neighbour (as the six ResNet rows once said ``ssd_mobilenet_v1_fpn_keras``) fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FIXTURES = Path(__file__).parent / "fixtures" / "tf2_zoo"
CONFIGS = FIXTURES / "configs"
SECTION = "## The TF2 Detection Model Zoo"


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def readme_rows() -> dict[str, dict[str, str]]:
    """The section's table, one dict per row (header cells as keys), by config name."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", len(SECTION))]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = _cells(lines[0])
    rows = {}
    for line in lines[2:]:
        row = dict(zip(header, _cells(line), strict=True))
        config = row["config (`pipeline.config_name`)"].strip("`")
        assert config not in rows, f"README lists {config} twice"
        rows[config] = row
    return rows


def config_facts(name: str) -> tuple[str, str]:
    """(feature extractor type, "HxW" input) of a shipped config, read from its text."""
    text = (CONFIGS / f"{name}.config").read_text(encoding="utf-8")
    extractor = re.search(r"""feature_extractor\s*\{\s*type:\s*["']([^"']+)["']""", text).group(1)
    fixed = re.search(r"fixed_shape_resizer\s*\{\s*height:\s*(\d+)\s*width:\s*(\d+)", text)
    if fixed:
        return extractor, f"{fixed.group(1)}x{fixed.group(2)}"
    keep = re.search(r"keep_aspect_ratio_resizer\s*\{[^}]*max_dimension:\s*(\d+)[^}]*"
                     r"pad_to_max_dimension:\s*true", text)
    return extractor, f"{keep.group(1)}x{keep.group(1)}"


def zoo_page() -> dict[str, tuple[str, str]]:
    """config -> (tarball folder, "Speed (ms)") from the zoo page's table."""
    page = {}
    for line in (FIXTURES / "zoo_table.md").read_text(encoding="utf-8").splitlines():
        cells = _cells(line)
        if len(cells) >= 4 and cells[2].startswith("http://"):
            folder = cells[2].rsplit("/", 1)[1].removesuffix(".tar.gz")
            page[cells[1].strip("`")] = (folder, cells[3])
    return page


ROWS = readme_rows()
SHIPPED = sorted(path.stem for path in CONFIGS.glob("*.config"))


def test_the_table_lists_each_shipped_config_once():
    assert len(SHIPPED) == 18
    assert sorted(ROWS) == SHIPPED


def test_config_facts_reads_both_resizers():
    # hand-checked against the two config files
    assert config_facts("ssd_mobilenet_v2_320x320_coco17_tpu-8") == (
        "ssd_mobilenet_v2_keras", "300x300")
    assert config_facts("ssd_efficientdet_d6_1408x1408_coco17_tpu-32") == (
        "ssd_efficientnet-b6_bifpn_keras", "1408x1408")


@pytest.mark.parametrize("config", SHIPPED)
def test_row_matches_the_shipped_config(config):
    row = ROWS[config]
    extractor, size = config_facts(config)
    listed = re.match(r"`([^`]+)`", row["feature extractor"])
    assert listed and listed.group(1) == extractor, (
        f"README row {config}: feature extractor {row['feature extractor']!r}, the config "
        f"says {extractor!r}")
    assert row["input"] == size


@pytest.mark.parametrize("config", SHIPPED)
def test_row_matches_the_zoo_page(config):
    folder, speed = zoo_page()[config]
    row = ROWS[config]
    assert row["zoo model (`presets/<folder>.yaml`)"] == f"`{folder}`"
    assert row["zoo ms"] == speed
    assert (REPO / "presets" / f"{folder}.yaml").is_file()
