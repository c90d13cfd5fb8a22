"""Frame metrics: SSIM and PSNR values, LPIPS against torchmetrics' own implementation, per-video and pooled FID
with a tiny feature network from a config, the FID Inception network, their configs, and the unavailable path."""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path
from urllib.error import URLError

import hydra
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from t2vlab.evaluation.metrics.clipsim import CLIPSIM
from t2vlab.evaluation.metrics.fid import FID, frechet_distance_few
from t2vlab.evaluation.metrics.fid_inception import FIDInceptionV3
from t2vlab.evaluation.metrics.frechet import frechet_distance
from t2vlab.evaluation.metrics.image import PSNR, SSIM
from t2vlab.evaluation.metrics.lpips import LPIPS
from t2vlab.evaluation.metrics.result import MetricUnavailable
from t2vlab.pretrained import download
from t2vlab.pretrained.alexnet_lpips import lpips_heads_file

CONF = Path(__file__).resolve().parents[1] / "conf" / "metrics"
# a small random conv net: frames (B, 3, H, W) in [0, 1] -> (B, 8) features
TINY_FEATURE = {"_target_": "torch.nn.Sequential", "_args_": [
    {"_target_": "torch.nn.Conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": 3, "stride": 2},
    {"_target_": "torch.nn.Tanh"},
    {"_target_": "torch.nn.AdaptiveAvgPool2d", "output_size": 1},
    {"_target_": "torch.nn.Flatten"},
]}


def videos(n: int = 3, t: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, t, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """An empty torch hub cache and a download that fails as it does offline; nothing touches the network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def refuse(url, timeout=None):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download, "urlopen", refuse)


# SSIM and PSNR


def test_identical_videos_score_ssim_1_and_psnr_inf():
    v = videos()
    ssim, psnr = SSIM()(v, v.clone()), PSNR()(v, v.clone())
    assert ssim.value == pytest.approx(1.0) and ssim.n == 3 and ssim.std == pytest.approx(0.0, abs=1e-7)
    assert math.isinf(psnr.value) and psnr.std is None  # spread of inf values is undefined
    assert ssim.unit == psnr.unit == "video pairs"


def test_psnr_of_a_constant_offset_and_its_spread_over_videos():
    zeros = torch.zeros(2, 3, 3, 16, 16)
    offset = torch.tensor([0.1, 0.01]).view(2, 1, 1, 1, 1).expand_as(zeros)
    result = PSNR()(zeros, offset)
    # 10 log10(1 / 0.1^2) = 20 dB and 10 log10(1 / 0.01^2) = 40 dB
    assert result.value == pytest.approx(30.0, abs=1e-3)
    assert result.std == pytest.approx(math.sqrt(200), abs=1e-3)  # unbiased std of (20, 40)
    assert result.n == 2 and result.settings["frames"] == 3
    assert SSIM()(zeros + 0.5, offset + 0.5).value < 1.0


def test_common_frames_resize_and_shape_errors():
    v = videos(n=2, t=5)
    result = SSIM(size=24)(v, torch.nn.functional.interpolate(v[:, :3].flatten(0, 1), size=40).view(2, 3, 3, 40, 40))
    assert result.settings["frames"] == 3 and result.settings["size"] == 24 and 0 < result.value < 1
    assert PSNR()(v[:, :1], v).settings["frames"] == 1
    with pytest.raises(ValueError, match=r"\(2, 5, 3, 32, 32\).*\(3, 5, 3, 32, 32\).*allowed"):
        PSNR()(v, videos(n=3, t=5))
    with pytest.raises(ValueError, match=r"\(2, 5, 3, 32, 32\).*\(2, 5, 3, 16, 16\).*size is set"):
        SSIM()(v, videos(n=2, t=5, size=16))
    with pytest.raises(ValueError, match=r"\(5, 3, 32, 32\).*allowed.*\(N, T, C, H, W\)"):
        SSIM()(v[0], v[0])
    with pytest.raises(ValueError, match=r"torch.uint8 are invalid; allowed: a float tensor"):
        PSNR()(v.mul(255).to(torch.uint8), v)


# LPIPS


def test_lpips_is_zero_for_identical_positive_for_different_and_symmetric(alexnet_file):
    metric = LPIPS(backbone_weights=str(alexnet_file), batch_size=5)  # batches cross video boundaries
    a, b = videos(n=2, t=3, size=64, seed=1), videos(n=2, t=3, size=64, seed=2)
    same = metric(a, a.clone())
    assert same.value == pytest.approx(0.0, abs=1e-6) and same.n == 2
    ab, ba = metric(a, b), metric(b, a)
    assert ab.value > 0.01 and ab.std is not None
    assert ab.value == pytest.approx(ba.value, rel=1e-5)
    assert ab.settings["backbone_weights"] == str(alexnet_file) and ab.settings["frames"] == 3
    # the heads are LPIPS v0.1's, as torchmetrics ships them
    shipped = torch.load(lpips_heads_file(), map_location="cpu", weights_only=True)
    assert torch.equal(metric.net.heads[2].weight, shipped["lin2.model.1.weight"])
    with pytest.raises(ValueError, match="at least 31 pixels"):
        metric(a[..., :16, :16], b[..., :16, :16])
    upsampled = LPIPS(backbone_weights=str(alexnet_file), size=48)(a[..., :16, :16], b[..., :16, :16])
    assert upsampled.value > 0.01 and upsampled.settings["size"] == 48


def test_lpips_matches_torchmetrics_implementation(alexnet_file, monkeypatch):
    """torchmetrics' LPIPS code, given the same backbone in place of torchvision's, computes the same numbers."""
    import torchmetrics.functional.image.lpips as tm_lpips

    metric = LPIPS(backbone_weights=str(alexnet_file))
    metric.load()
    features = metric.net.backbone.features
    monkeypatch.setattr(tm_lpips, "_get_tv_model_features",
                        lambda net, pretrained=False: nn.Sequential(*features, nn.MaxPool2d(3, 2)))
    reference = tm_lpips._LPIPS(pretrained=True, net="alex", pnet_rand=True).eval()
    a, b = videos(n=1, t=4, size=64, seed=3), videos(n=1, t=4, size=64, seed=4)
    with torch.no_grad():
        expected = reference(a[0], b[0], normalize=True).flatten().double().mean()
    assert metric(a, b).value == pytest.approx(float(expected), rel=1e-5)


def test_lpips_and_fid_unavailable_without_weights(no_network, tmp_path):
    for metric, key in ((LPIPS(), "metrics.lpips.backbone_weights"), (FID(), "metrics.fid.weights")):
        with pytest.raises(MetricUnavailable) as info:
            metric.load()
        assert "could not download" in info.value.reason and "name resolution" in info.value.reason
        assert key in info.value.how_to_enable and "internet" in info.value.how_to_enable
    with pytest.raises(MetricUnavailable, match="does not exist"):
        LPIPS(backbone_weights=str(tmp_path / "missing.pth")).load()
    torch.save({"something": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(MetricUnavailable, match="not torchvision's AlexNet"):
        LPIPS(backbone_weights=str(tmp_path / "wrong.pth")).load()
    with pytest.raises(MetricUnavailable, match="not the FID Inception"):
        FID(weights=str(tmp_path / "wrong.pth")).load()
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(MetricUnavailable, match="cannot be read as a state dict"):
        FID(weights=str(tmp_path / "garbage.pth")).load()


class _BrokenStream(io.BytesIO):
    def read(self, size=-1):
        chunk = super().read(3)
        if not chunk:
            raise ConnectionResetError("connection lost")
        return chunk


def test_download_checks_the_hash_in_the_file_name_and_never_keeps_a_partial_file(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    payload = b"weights"
    monkeypatch.setattr(download, "urlopen", lambda url, timeout=None: io.BytesIO(payload))
    good = f"https://weights.invalid/net-{hashlib.sha256(payload).hexdigest()[:8]}.pth"
    assert download.cached_download(good).read_bytes() == payload and not caplog.records
    odd = "https://weights.invalid/net-0123abcd.pth"  # a publisher not following torch's naming convention
    assert download.cached_download(odd).read_bytes() == payload
    assert "does not start with the 0123abcd" in caplog.text
    monkeypatch.setattr(download, "urlopen", lambda url, timeout=None: _BrokenStream(payload))
    cut = "https://weights.invalid/other.pth"
    with pytest.raises(ConnectionResetError):
        download.cached_download(cut)
    assert sorted(download.cached_path(cut).parent.iterdir()) == sorted(
        [download.cached_path(good), download.cached_path(odd)])  # nothing of the cut download is left


def test_weights_come_from_the_hub_cache_when_present(no_network, alexnet_file):
    cached = download.cached_path(LPIPS().url)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(alexnet_file.read_bytes())
    metric = LPIPS()
    metric.load()  # the failing download is never asked
    assert metric.source == str(cached)


# FID


def test_per_video_fid_with_a_feature_network_from_a_config():
    torch.manual_seed(0)
    metric = FID(feature=TINY_FEATURE, batch_size=6)
    a = videos(n=3, t=8, size=16, seed=5)
    same = metric(a, a.clone())
    assert same.value == pytest.approx(0.0, abs=1e-6) and same.n == 3
    assert same.settings["frames"] == 8 and same.settings["mode"] == "per_video" and same.unit == "video pairs"
    shifted = metric(a, (a + 0.3).clamp(0, 1))
    other = metric(a, videos(n=3, t=8, size=16, seed=6))
    assert shifted.value > 1e-2 and other.value > 1e-3 and shifted.std is not None  # identical: ~1e-18
    # each video's value is the Fréchet distance of its own frames' features
    feats_a, feats_b = metric.features(a), metric.features((a + 0.3).clamp(0, 1))
    per_video = [frechet_distance(fa, fb) for fa, fb in zip(feats_a, feats_b, strict=True)]
    assert shifted.value == pytest.approx(sum(per_video) / 3, rel=1e-6)


def test_per_video_distance_equals_torchmetrics_fid():
    from torchmetrics.image.fid import FrechetInceptionDistance

    torch.manual_seed(1)
    net = hydra.utils.instantiate(TINY_FEATURE)
    a, b = videos(n=1, t=16, size=16, seed=7), videos(n=1, t=16, size=16, seed=8) * 0.8
    reference = FrechetInceptionDistance(feature=net, normalize=True)
    reference.update(b[0], real=True)
    reference.update(a[0], real=False)
    assert FID(feature=net)(a, b).value == pytest.approx(float(reference.compute()), rel=1e-5)  # theirs: float32
    # and the closed form agrees on a case where the features outnumber the samples
    x, y = torch.randn(5, 64, dtype=torch.float64), torch.randn(7, 64, dtype=torch.float64) + 0.2
    assert frechet_distance_few(x, y) == pytest.approx(frechet_distance(x, y), rel=1e-6)


def test_pooled_fid_compares_all_frames():
    torch.manual_seed(2)
    metric = FID(feature=TINY_FEATURE, mode="pooled")
    a, b = videos(n=2, t=6, size=16, seed=9), videos(n=3, t=5, size=16, seed=10)
    same = metric(a, a.clone())
    assert same.value == pytest.approx(0.0, abs=1e-9)
    result = metric(a, b)
    assert result.value > 1e-4
    expected = frechet_distance(metric.features(a).flatten(0, 1), metric.features(b).flatten(0, 1))
    assert result.value == pytest.approx(expected, rel=1e-4)
    assert result.n == 2 and result.settings["generated_frames"] == 12 and result.settings["reference_frames"] == 15


def test_fid_inception_builds_and_returns_pool3_features():
    net = FIDInceptionV3().eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 24, 24))  # resized to 299 inside
    assert out.shape == (2, 2048) and torch.isfinite(out).all()
    state = net.state_dict()
    assert len([k for k in state if k.endswith(".conv.weight")]) == 94  # Inception-v3's convolutions, no aux head
    assert state["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
    # pytorch-fid's file also holds the 1008-way classifier, which is skipped; anything missing is refused
    net.load_checkpoint({**state, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)})
    with pytest.raises(ValueError, match="Mixed_5b"):
        net.load_checkpoint({k: v for k, v in state.items() if not k.startswith("Mixed_5b.")})


# configs


@pytest.mark.parametrize(("name", "cls"), [("ssim", SSIM), ("psnr", PSNR), ("lpips", LPIPS), ("fid", FID),
                                            ("clipsim", CLIPSIM)])
def test_each_config_builds_its_metric(name, cls):
    metric = hydra.utils.instantiate(OmegaConf.load(CONF / f"{name}.yaml"))
    assert type(metric) is cls


def test_fid_config_takes_a_feature_network():
    cfg = OmegaConf.merge(OmegaConf.load(CONF / "fid.yaml"), {"feature": TINY_FEATURE, "mode": "pooled"})
    metric = hydra.utils.instantiate(cfg)  # recursive: the feature config arrives built
    metric.load()
    assert isinstance(metric.metric.inception, nn.Sequential) and metric.mode == "pooled"
