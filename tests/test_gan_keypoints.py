import math

import pytest
import torch

from t2vlab.models.gan.keypoints import SpatialSoftArgmax
from t2vlab.models.gan.video import VideoDiscriminator


def direct_soft_argmax(a: torch.Tensor) -> list[list[tuple[float, float]]]:
    """x_c = sum_ij p_c(i, j) u_j, y_c = sum_ij p_c(i, j) v_i with p_c the softmax of a_c over positions and u, v
    the pixel centres in [-1, 1], term by term."""
    n, c, h, w = a.shape
    out = []
    for b in range(n):
        row = []
        for k in range(c):
            z = sum(math.exp(a[b, k, i, j].item()) for i in range(h) for j in range(w))
            x = y = 0.0
            for i in range(h):
                for j in range(w):
                    p = math.exp(a[b, k, i, j].item()) / z
                    x += p * ((j + 0.5) * 2 / w - 1)
                    y += p * ((i + 0.5) * 2 / h - 1)
            row.append((x, y))
        out.append(row)
    return out


def test_soft_argmax_against_a_direct_transcription():
    torch.manual_seed(0)
    a = torch.randn(2, 3, 4, 5) * 2
    got = SpatialSoftArgmax()(a)
    assert got.shape == (2, 3, 2) and got.dtype == torch.float32
    want = torch.tensor(direct_soft_argmax(a), dtype=torch.float64)
    assert torch.allclose(got.double(), want, atol=1e-6)


def test_soft_argmax_finds_a_peak():
    a = torch.zeros(1, 1, 8, 8)
    a[0, 0, 1, 6] = 50.0  # row 1, column 6: x = 6.5 / 4 - 1, y = 1.5 / 4 - 1
    assert SpatialSoftArgmax()(a)[0, 0].tolist() == pytest.approx([0.625, -0.625], abs=1e-5)


def test_discriminator_with_keypoints_scores_clips_and_passes_gradient_to_them():
    torch.manual_seed(0)
    d = VideoDiscriminator(vocab_size=7, base_channels=8, keypoints=4)
    video = torch.randn(2, 5, 3, 64, 64, requires_grad=True)
    ids, mask = torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    logits, words = d(video, ids, mask, words=True)
    assert logits.shape == (2,) and words.shape == (2, 7)
    logits.sum().backward()
    assert d.keypoint_maps.weight.grad.abs().sum() > 0 and video.grad.abs().sum() > 0
    # without keypoints the temporal convolutions see the per-frame features alone
    assert VideoDiscriminator(vocab_size=7, base_channels=8).temporal[0].in_channels == 256
    assert d.temporal[0].in_channels == 256 + 8


def test_discriminator_refuses_negative_keypoints():
    with pytest.raises(ValueError, match=r"model.discriminator.keypoints=-1 is invalid; allowed: >= 0"):
        VideoDiscriminator(vocab_size=7, keypoints=-1)
