"""`ladder fid` and `ladder fid-stats`: against scipy, against the TorchScript network's own
features of the fixture images, and one clear line for every unusable input."""
import json
import os

import numpy as np
import pytest
import scipy.linalg
from PIL import Image

from ladder_tf.commands import fid as fid_cmd
from fixtures.make_fid_inception_fixture import OUT as FIXTURE, fixture_images


def scipy_fid(mu1, c1, mu2, c2):
    """The textbook formula with scipy's general matrix square root (pytorch-fid's maths)."""
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * covmean))


def one_error(capsys, main, argv):
    """The one error line of a failing command (exit status 2), without a traceback."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def write_stats(path, mu, sigma):
    np.savez(path, mu=mu, sigma=sigma)
    return str(path)


def test_fid_of_two_statistics_files_is_scipys(tmp_path, capsys):
    rng = np.random.default_rng(0)
    stats = []
    for i in range(2):
        x = rng.normal(size=(200, 16)) * rng.uniform(0.5, 2, 16) + i
        stats.append((x.mean(0), np.cov(x, rowvar=False)))
    a = write_stats(tmp_path / "a.npz", *stats[0])
    b = write_stats(tmp_path / "b.npz", *stats[1])
    assert fid_cmd.main_fid([a, b, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fid"] == pytest.approx(scipy_fid(*stats[0], *stats[1]), rel=1e-9)
    assert out["a"] == {"path": a, "kind": "stats", "n": None, "skipped": 0, "dim": 16}
    assert fid_cmd.main_fid([a, a]) == 0
    assert capsys.readouterr().out.strip() == "FID: 0.0000"


def test_unusable_inputs_are_one_line_each(tmp_path, capsys, monkeypatch):
    good = write_stats(tmp_path / "good.npz", np.zeros(4), np.eye(4))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    cases = [
        ([str(tmp_path / "nowhere"), good], "nowhere: no such file or folder"),
        ([str(tmp_path / "empty"), good], "no image files"),
        ([write_stats(tmp_path / "bad.npz", np.zeros(4), np.eye(3)), good], "mu has shape (4,) and sigma (3, 3)"),
        ([write_stats(tmp_path / "d5.npz", np.zeros(5), np.eye(5)), good], "5-d statistics"),
        ([good, str(tmp_path / "notes.txt")], "no such file"),
        ([good, good, "--batch-size", "0"], "--batch-size must be at least 1"),
    ]
    np.savez(tmp_path / "floats.npz", images=np.zeros((3, 8, 8, 3), np.float32))
    cases.append(([str(tmp_path / "floats.npz"), good], "expected uint8 images"))
    for argv, fragment in cases:
        assert fragment in one_error(capsys, fid_cmd.main_fid, argv), argv
    line = one_error(capsys, fid_cmd.main_stats, [good, "--out", str(tmp_path / "s.npz")])
    assert "already holds statistics" in line
    line = one_error(capsys, fid_cmd.main_stats, [str(tmp_path / "floats.npz"), "--out", str(tmp_path / "s.txt")])
    assert "give a .npz file path" in line
    # no converted network: say how to make it
    from ladder_tf.evaluation import fid_weights
    monkeypatch.setattr(fid_weights, "find_fid_weights", lambda path=None: None)
    np.savez(tmp_path / "imgs.npz", images=np.zeros((3, 8, 8), np.uint8))
    line = one_error(capsys, fid_cmd.main_fid, [str(tmp_path / "imgs.npz"), good])
    assert "run `ladder fid-weights`" in line
    assert not os.path.exists(tmp_path / "s.npz")


@pytest.fixture(scope="module")
def weights():
    from ladder_tf.evaluation.fid_weights import find_fid_weights

    path = find_fid_weights()
    if path is None:
        pytest.skip("FID Inception weights not converted: run `make fid-weights` (ladder fid-weights)")
    return path


def rank_one_fid(f_a, f_b):
    """FID of two 2-image sets from their features, in closed form: each covariance is u u^T with
    u = (f1 - f2) / sqrt(2), and tr((C_a C_b)^(1/2)) = |u_a . u_b|."""
    (a1, a2), (b1, b2) = np.asarray(f_a, np.float64), np.asarray(f_b, np.float64)
    u, w = (a1 - a2) / np.sqrt(2), (b1 - b2) / np.sqrt(2)
    mu = (a1 + a2) / 2 - (b1 + b2) / 2
    return float(mu @ mu + u @ u + w @ w - 2 * abs(u @ w))


def test_fid_of_the_fixture_images_is_the_torchscript_networks(tmp_path, capsys, weights):
    """A folder (PNG, one in a subfolder, one junk file skipped) against a uint8 .npz, and the
    statistics ``fid-stats`` writes: the FID the TorchScript network's own features give."""
    fx = np.load(FIXTURE)
    images = {int(s): fixture_images(int(s)) for s in fx["seeds"]}
    feats = dict(zip((int(s) for s in fx["seeds"]), fx["features"]))
    folder = tmp_path / "a"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(images[0]).save(folder / "x0.png")
    Image.fromarray(images[1]).save(folder / "sub" / "x1.png")
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "readme.txt").write_text("ignored: not an image extension")
    npz = tmp_path / "b.npz"
    np.savez(npz, images=np.stack([images[2], images[3]]))
    expected = rank_one_fid([feats[0], feats[1]], [feats[2], feats[3]])
    assert fid_cmd.main_fid([str(folder), str(npz), "--json", "--no-progress"]) == 0
    io = capsys.readouterr()
    out = json.loads(io.out)
    assert out["fid"] == pytest.approx(expected, rel=1e-4)
    assert out["a"]["n"] == 2 and out["a"]["skipped"] == 1 and out["b"]["n"] == 2
    assert "skipped 1 file" in io.err and "broken.png" in io.err
    # the same through a statistics file written once
    stats = tmp_path / "b_stats.npz"
    assert fid_cmd.main_stats([str(npz), "--out", str(stats), "--no-progress"]) == 0
    assert "wrote" in capsys.readouterr().out
    with np.load(stats) as f:
        assert sorted(f.files) == ["mu", "sigma"] and f["sigma"].shape == (2048, 2048)
        np.testing.assert_allclose(f["mu"], (feats[2] + feats[3]) / 2, rtol=0, atol=2e-4 * np.abs(feats[2]).max())
    assert fid_cmd.main_fid([str(folder), str(stats), "--no-progress"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("FID: ") and float(line.split()[1]) == pytest.approx(expected, rel=1e-4)
