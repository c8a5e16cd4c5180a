"""The generator's command line: bad input gets one line and exit code 2; render and bands write real files."""

import subprocess
import sys

import pytest
from PIL import Image

from generator.__main__ import main
from tests.conftest import ROOT


@pytest.mark.parametrize(
    "argv, words",
    [
        (["bands", "--band", "huge"], "unknown band 'huge': use high (0.5-1.0)"),
        (["bands", "--band", "0.5-0.3"], "LO >= HI"),
        (["bands", "--band", "0.5-1.5"], "outside [0, 1]"),
        (["bands", "--rules", "0"], "0 is not positive"),
        (["bands", "--rules", "-3"], "-3 is not positive"),
        (["render", "--search", "many"], "'many' is not an integer"),
        (["bands", "--device", "tpu"], "unknown device 'tpu': use auto, cpu, cuda or cuda:N"),
        (["bands", "--batch", "24"], "rules_per_batch=24: use a multiple of 16"),
        (["shuffle"], "invalid choice: 'shuffle'"),
    ],
)
def test_bad_input_gets_one_line_naming_the_fix_and_exit_code_2(argv, words, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse exits by itself
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2
    assert words in err and err.count("\n") == 1, err


def test_the_real_process_exits_non_zero_on_bad_input():
    result = subprocess.run([sys.executable, "-m", "generator", "bands", "--band", "9-1"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m generator bands: error: band '9-1' lies outside [0, 1]: gzip ratios are fractions, use e.g. 0.35-0.6"]


def test_render_writes_a_strip_png_and_a_27_frame_gif(tmp_path, capsys):
    out = tmp_path / "mid"
    assert main(["render", "--band", "mid", "--no-compile", "--batch", "64", "--out", str(out)]) == 0
    assert "ratio 0.3" in capsys.readouterr().out  # the rule it found lies in the mid band
    strip = Image.open(f"{out}.png")
    assert strip.format == "PNG" and strip.width > 9 * 12 * 8 and strip.height > 3 * 12 * 8
    gif = Image.open(f"{out}.gif")
    assert gif.format == "GIF" and gif.n_frames == 27 and gif.size == (12 * 16, 12 * 16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mid.gif", "mid.png"]  # no temporary files left


def test_bands_prints_the_share_per_bin_and_draws_the_histogram(tmp_path, capsys):
    png = tmp_path / "hist.png"
    assert main(["bands", "--rules", "96", "--band", "code", "--no-compile", "--batch", "48", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    shares = [float(line.split()[2].rstrip("%")) for line in out.splitlines() if line.strip().startswith("[")]
    assert len(shares) == 7 and abs(sum(shares) + float(out.split(">= 0.7")[1].split("%")[0]) - 100) < 0.5
    assert "band mid (0.3 < ratio < 0.4) accepts" in out
    assert Image.open(png).size == (640, 320)
