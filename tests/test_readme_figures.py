"""tools/readme_figures.py: the compacted PNG keeps a grey figure's pixels exactly, and the
docs' commands for it parse."""
import importlib.util
import os
import re
import shlex

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("readme_figures",
                                              os.path.join(ROOT, "tools", "readme_figures.py"))
readme_figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_figures)


def test_grey_figure_is_stored_as_8_bit_grey_with_the_same_pixels(tmp_path):
    grey = np.random.default_rng(0).integers(0, 256, (30, 40), dtype=np.uint8)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    Image.fromarray(rgba).save(tmp_path / "in.png")
    readme_figures.compact_png(str(tmp_path / "in.png"), str(tmp_path / "out.png"))
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "L"
        np.testing.assert_array_equal(np.asarray(out), grey)


def test_colour_figure_keeps_its_size_with_a_small_palette(tmp_path):
    colour = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(colour).save(tmp_path / "in.png")
    readme_figures.compact_png(str(tmp_path / "in.png"), str(tmp_path / "out.png"))
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "P" and out.size == (40, 30)
        assert len(out.getcolors()) <= readme_figures.PALETTE_COLOURS


def test_runs_and_copy_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exit_info:
        readme_figures.main(["--out", "x.png"])
    assert exit_info.value.code == 2
    assert "either LABEL=RUN arguments or --copy PNG" in capsys.readouterr().err


def test_docs_commands_name_existing_options():
    with open(os.path.join(ROOT, "docs", "results.md")) as fh:
        lines = [line for line in fh if line.startswith("python tools/readme_figures.py")]
    assert len(lines) >= 4
    options = set(re.findall(r"--[a-z]+", readme_figures.__doc__ + open(spec.origin).read()))
    for line in lines:
        words = shlex.split(line)
        assert "--out" in words
        assert {w for w in words if w.startswith("--")} <= options
