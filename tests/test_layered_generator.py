import math

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from t2vlab.data.circles import PROMPT_MOTIONS
from t2vlab.data.datamodule import CirclesDataModule
from t2vlab.lit.gan import GANModule
from t2vlab.models.gan.layered import MIN_HALF_WIDTH, LayeredVideoGenerator
from t2vlab.models.gan.losses import GANHingeLoss
from t2vlab.models.gan.video import VideoDiscriminator
from t2vlab.text.word_tokenizer import WordTokenizer, split_words


def small(**kw) -> LayeredVideoGenerator:
    args = dict(vocab_size=12, image_size=32, noise_dim=8, text_dim=8, hidden=16, sprite_size=8, sprite_channels=16,
                oscillators=3)
    return LayeredVideoGenerator(**(args | kw))


def text():
    ids = torch.tensor([[1, 2, 3], [4, 5, 0]])
    return ids, ids != 0


def test_shapes_range_and_any_length():
    g = small().eval()
    for frames in (1, 7, 16):
        video = g(torch.randn(2, 8), *text(), num_frames=frames)
        assert video.shape == (2, frames, 3, 32, 32) and video.abs().max() <= 1


def test_features_and_trajectory_against_their_formulas():
    """f(t) = [sin(w t + phi), cos(w t + phi), t/10, 1] with w = pi sigmoid(W_w h); (x, y, s') = C(h) f(t) + R([h, f])
    and s = softplus(s') + MIN_HALF_WIDTH, written out frame by frame."""
    torch.manual_seed(0)
    g = small()
    for p in g.parameters():
        p.data.normal_(0, 0.3)
    h = torch.randn(2, 16)
    x, y, s = g.trajectory(h, 5)
    for b in range(2):
        w = math.pi * torch.sigmoid(g.freq.weight @ h[b] + g.freq.bias)
        phi = g.phase.weight @ h[b] + g.phase.bias
        coef = (g.readout.weight @ h[b] + g.readout.bias).view(3, -1)
        for t in range(5):
            f = torch.cat([torch.sin(w * t + phi), torch.cos(w * t + phi), torch.tensor([t / 10, 1.0])])
            r = g.residual(torch.cat([h[b], f]))
            out = coef @ f + r
            assert torch.allclose(torch.stack([x[b, t], y[b, t]]), out[:2], atol=1e-5)
            assert torch.isclose(s[b, t], F.softplus(out[2]) + MIN_HALF_WIDTH, atol=1e-5)


def test_linear_size_path_and_keep_in_frame_against_their_formulas():
    """size_path=linear: s = softplus(a(h) + b(h) t / 10) + MIN_HALF_WIDTH, whatever the oscillators do;
    keep_in_frame=m: (x, y) = m tanh of what the free path gives."""
    torch.manual_seed(0)
    free, bounded = small(size_path="linear"), small(size_path="linear", keep_in_frame=0.8)
    for p in free.parameters():
        p.data.normal_(0, 0.3)
    bounded.load_state_dict(free.state_dict())
    h = torch.randn(2, 16)
    x, y, s = free.trajectory(h, 6)
    bx, by, bs = bounded.trajectory(h, 6)
    for b in range(2):
        a, rate = free.size.weight @ h[b] + free.size.bias
        for t in range(6):
            assert torch.isclose(s[b, t], F.softplus(a + rate * t / 10) + MIN_HALF_WIDTH, atol=1e-6)
    assert free.readout.out_features == 2 * 8 and free.residual[-1].out_features == 2  # x and y only
    torch.testing.assert_close((bx, by, bs), (0.8 * x.tanh(), 0.8 * y.tanh(), s))
    assert x.abs().max() > 0.8 > bx.abs().max()


def test_alpha_floor_keeps_the_sprite_visible():
    """alpha = (floor + (1 - floor) sigmoid(logit)) x window: a sprite whose logit says transparent still covers
    `floor` of the background inside the window."""
    g = small(image_size=64, oscillators=1, alpha_floor=0.5).eval()
    for p in g.parameters():
        p.data.zero_()
    with torch.no_grad():
        g.to_rgba.bias.copy_(torch.tensor([-1.0, -1.0, -1.0, -30.0]))  # black, and transparent by its logit
        g.background.bias.fill_(1.0)  # white
    frame = g(torch.zeros(1, 8), torch.tensor([[1]]), torch.tensor([[True]]), num_frames=1)[0, 0]
    assert torch.allclose(frame[:, 32, 32], torch.zeros(3), atol=1e-4)  # half black over white: grey 0
    assert torch.allclose(frame[:, 2, 2], torch.ones(3))  # outside the window: background
    with pytest.raises(ValueError, match="model.generator.alpha_floor=1.0 is invalid"):
        small(alpha_floor=1.0)


def test_an_orbit_is_exact_in_the_per_clip_readout():
    """An orbit x = a cos(w t + phi), y = a sin(w t + phi) needs one oscillator and a linear readout: set by hand."""
    g = small(oscillators=1)
    for p in g.parameters():
        p.data.zero_()
    with torch.no_grad():
        g.freq.bias.fill_(math.log(0.25 / 0.75))  # w = pi / 4
        g.phase.bias.fill_(0.3)
        g.readout.bias.view(3, 4)[0, 1] = 0.5  # x = 0.5 cos(.)
        g.readout.bias.view(3, 4)[1, 0] = 0.5  # y = 0.5 sin(.)
    x, y, _ = g.trajectory(torch.zeros(1, 16), 8)
    t = torch.arange(8.0)
    assert torch.allclose(x[0], 0.5 * torch.cos(math.pi / 4 * t + 0.3), atol=1e-6)
    assert torch.allclose(y[0], 0.5 * torch.sin(math.pi / 4 * t + 0.3), atol=1e-6)


def test_the_sprite_lands_where_the_trajectory_says():
    """An opaque sprite at centre (x, y): the frame's foreground centroid is at that point of the image."""
    g = small(image_size=64, oscillators=1).eval()
    for p in g.parameters():
        p.data.zero_()
    with torch.no_grad():
        g.to_rgba.bias.copy_(torch.tensor([-1.0, -1.0, 1.0, 20.0]))  # blue, opaque everywhere on the sprite
        g.background.bias.fill_(1.0)  # white
        g.readout.bias.view(3, 4)[0, 3] = 0.5  # x = 0.5: three quarters of the way across
        g.readout.bias.view(3, 4)[1, 3] = -0.25  # y = -0.25
        g.residual[-1].bias[2] = math.log(math.expm1(0.1 - MIN_HALF_WIDTH))  # s = 0.1: 3.2 px half-width
    video = g(torch.zeros(1, 8), torch.tensor([[1]]), torch.tensor([[True]]), num_frames=2)
    blue = (video[0, 0, 0] < 0).float()  # red channel low where the sprite is
    ys, xs = torch.nonzero(blue, as_tuple=True)
    pixel = lambda v: (v + 1) / 2 * 64 - 0.5  # noqa: E731
    assert abs(xs.float().mean() - pixel(0.5)) < 0.6 and abs(ys.float().mean() - pixel(-0.25)) < 0.6
    assert 4 <= xs.max() - xs.min() + 1 <= 8  # 2 s in image units = 6.4 px


@pytest.mark.parametrize("key,value", [("oscillators", 0), ("background_size", 0), ("init_half_width", 0.0),
                                       ("sprite_size", 12), ("size_path", "cubic"), ("alpha_floor", -0.1),
                                       ("keep_in_frame", 1.5)])
def test_bad_values_are_refused_by_name(key, value):
    with pytest.raises(ValueError, match=f"model.generator.{key}={value!r}"):
        small(**{key: value})


def test_the_sprite_box_never_shows():
    """An opaque sprite covers a disc of radius s (the window), not its square box: the corners stay background."""
    g = small(image_size=64, oscillators=1).eval()
    for p in g.parameters():
        p.data.zero_()
    with torch.no_grad():
        g.to_rgba.bias.copy_(torch.tensor([-1.0, -1.0, 1.0, 20.0]))
        g.background.bias.fill_(1.0)
        g.residual[-1].bias[2] = math.log(math.expm1(0.5 - MIN_HALF_WIDTH))  # s = 0.5: a 32 px box in the middle
    frame = g(torch.zeros(1, 8), torch.tensor([[1]]), torch.tensor([[True]]), num_frames=1)[0, 0]
    covered = (frame[0] < 0).float()
    area = covered.sum().item()
    assert math.pi * 12.8**2 * 0.95 < area < math.pi * 16**2  # between the discs of radius 0.8 s and s (16 px)
    for y, x in ((17, 17), (17, 46), (46, 17), (46, 46)):  # inside the box, outside the disc
        assert torch.allclose(frame[:, y, x], torch.ones(3))


def test_it_trains_inside_the_gan_module():
    vocab = sorted({w for p in PROMPT_MOTIONS for w in split_words(p)})
    n = len(WordTokenizer(vocab))
    g = LayeredVideoGenerator(n, hidden=32, sprite_channels=16, oscillators=2)
    module = GANModule(g, VideoDiscriminator(n, base_channels=8), GANHingeLoss(), vocab, word_weight=1.0)
    before = {k: p.clone() for k, p in g.named_parameters() if k.startswith(("freq", "phase", "to_rgba"))}
    trainer = pl.Trainer(fast_dev_run=True, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=CirclesDataModule({"num_videos": 8}, batch_size=4))
    assert torch.isfinite(trainer.callback_metrics["train/loss_g"])
    changed = [k for k, p in g.named_parameters() if k in before and not torch.equal(p, before[k])]
    assert {k.split(".")[0] for k in changed} == {"freq", "phase", "to_rgba"}  # motion and look both learn
    assert module.generate(["circle moving up-right"], num_frames=16).shape == (1, 16, 3, 64, 64)
