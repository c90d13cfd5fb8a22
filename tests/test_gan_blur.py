import math

import pytest
import torch

from t2vlab.models.gan.blur import blur_video


def direct_blur(frame: torch.Tensor, sigma: float) -> torch.Tensor:
    """out[y, x] = sum_{i, j} w_i w_j in[reflect(y + i), reflect(x + j)], w_k ~ exp(-k^2 / (2 sigma^2)), sum 1."""
    r = math.ceil(3 * sigma)
    w = [math.exp(-k * k / (2 * sigma * sigma)) for k in range(-r, r + 1)]
    w = [v / sum(w) for v in w]
    H, W = frame.shape
    reflect = lambda i, n: -i if i < 0 else (2 * (n - 1) - i if i >= n else i)  # noqa: E731
    out = torch.zeros_like(frame, dtype=torch.float64)
    for y in range(H):
        for x in range(W):
            out[y, x] = sum(w[a] * w[b] * frame[reflect(y + a - r, H), reflect(x + b - r, W)].item()
                            for a in range(2 * r + 1) for b in range(2 * r + 1))
    return out


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_blur_against_a_direct_2d_gaussian(sigma):
    torch.manual_seed(0)
    video = torch.rand(1, 2, 3, 12, 12, dtype=torch.float64)
    out = blur_video(video, sigma)
    for t in range(2):
        for c in range(3):
            torch.testing.assert_close(out[0, t, c], direct_blur(video[0, t, c], sigma))


def test_zero_sigma_is_the_identity_and_a_constant_stays_constant():
    video = torch.rand(2, 3, 3, 16, 16)
    assert blur_video(video, 0.0) is video
    flat = torch.full((1, 2, 3, 16, 16), 0.7)
    torch.testing.assert_close(blur_video(flat, 3.0), flat)


def test_a_disc_spreads_but_keeps_its_mass_and_centre():
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    disc = ((yy - 12).square() + (xx - 18).square() <= 9).double().view(1, 1, 1, 32, 32)
    out = blur_video(disc, 2.0)[0, 0, 0]
    assert math.isclose(out.sum().item(), disc.sum().item(), rel_tol=1e-6)  # far from the borders
    assert abs((out * yy).sum() / out.sum() - 12) < 1e-6 and abs((out * xx).sum() / out.sum() - 18) < 1e-6
    assert (out > 0.01).sum() > (disc > 0).sum()
