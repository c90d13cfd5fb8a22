import importlib.util
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from t2vlab.data.circles import PROMPT_MOTIONS
from t2vlab.data.datamodule import CirclesDataModule
from t2vlab.lit.keypoint_vae import KeypointVAEModule
from t2vlab.models.gan.blur import blur_video
from t2vlab.models.gan.layered import LayeredVideoGenerator
from t2vlab.models.gan.losses import GANHingeLoss
from t2vlab.models.gan.video import VideoGenerator
from t2vlab.models.keypoint_vae.encoder import KeypointEncoder, MotionPosterior
from t2vlab.models.keypoint_vae.losses import KeypointVAELoss
from t2vlab.text.word_tokenizer import WordTokenizer, split_words

VOCAB = sorted({w for p in PROMPT_MOTIONS for w in split_words(p)})


def direct_kl(mean: torch.Tensor, log_var: torch.Tensor) -> float:
    """(1/B) sum_b sum_j (mu^2 + exp(lv) - 1 - lv) / 2, term by term."""
    total = 0.0
    for b in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            m, lv = mean[b, j].item(), log_var[b, j].item()
            total += (m * m + torch.tensor(lv).exp().item() - 1 - lv) / 2
    return total / mean.shape[0]


def direct_mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return sum((x - y) ** 2 for x, y in zip(a.flatten().tolist(), b.flatten().tolist(), strict=True)) / a.numel()


def pooled(video: torch.Tensor, k: int) -> torch.Tensor:
    """k x k pixel means by reshaping: (B, T, C, H, W) -> (B, T, C, H/k, W/k)."""
    B, T, C, H, W = video.shape
    return video.reshape(B, T, C, H // k, k, W // k, k).mean(dim=(4, 6))


def test_the_loss_terms_against_direct_transcriptions():
    torch.manual_seed(0)
    loss = KeypointVAELoss(blur_sigmas=[1.0, 2.0], pool=4, path_weight=0.5, beta=0.1)
    rendered, real = torch.rand(2, 3, 3, 16, 16), torch.rand(2, 3, 3, 16, 16)
    want = direct_mse(rendered, real) + sum(
        direct_mse(blur_video(pooled(rendered, 4), s), blur_video(pooled(real, 4), s)) for s in (1.0, 2.0))
    assert loss.reconstruction(rendered, real).item() == pytest.approx(want, rel=1e-5)
    gen = tuple(torch.rand(2, 3) + 0.1 for _ in range(3))
    read = tuple(torch.rand(2, 3) + 0.1 for _ in range(3))
    want_path = direct_mse(gen[0], read[0]) + direct_mse(gen[1], read[1]) + direct_mse(gen[2].log(), read[2].log())
    assert loss.path(gen, read).item() == pytest.approx(want_path, rel=1e-5)
    mean, log_var = torch.randn(4, 5), torch.randn(4, 5)
    assert loss.kl(mean, log_var).item() == pytest.approx(direct_kl(mean, log_var), rel=1e-5)
    assert loss.kl(torch.zeros(3, 2), torch.zeros(3, 2)).item() == 0.0  # the prior itself
    assert loss.total(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0)).item() == pytest.approx(1 + 1 + 0.3)


def test_the_path_term_sends_no_gradient_to_the_encoder_path():
    read = tuple((torch.rand(2, 3) + 0.1).requires_grad_(True) for _ in range(3))
    gen = tuple((torch.rand(2, 3) + 0.1).requires_grad_(True) for _ in range(3))
    KeypointVAELoss().path(gen, read).backward()
    assert all(t.grad is None for t in read) and all(t.grad.abs().sum() > 0 for t in gen)


@pytest.mark.parametrize("key,value", [("blur_sigmas", [0.0]), ("pool", 0), ("path_weight", -1.0), ("beta", -0.5)])
def test_the_loss_refuses_bad_values_by_name(key, value):
    with pytest.raises(ValueError, match=f"loss.{key}="):
        KeypointVAELoss(**{key: value})


def test_the_keypoint_encoder_learns_to_find_a_moving_disc():
    """Reconstruction alone, through a sprite drawn on the encoder's path, teaches the encoder where the disc is:
    after 300 steps on one clip its path follows the disc's centre within a pixel. Up to a constant offset: the
    path places the sprite, and the sprite may draw its disc off its own centre."""
    torch.manual_seed(0)
    T, S = 4, 32
    yy, xx = torch.meshgrid(torch.arange(S) + 0.5, torch.arange(S) + 0.5, indexing="ij")
    centres = torch.tensor([(8.0 + 5 * t, 12.0 + 2 * t) for t in range(T)])
    frames = [torch.where(((xx - cx) ** 2 + (yy - cy) ** 2 < 16), -1.0, 1.0) for cx, cy in centres.tolist()]
    video = torch.stack([torch.stack([f, f, torch.ones_like(f)]) for f in frames]).unsqueeze(0)  # blue on white
    encoder = KeypointEncoder(channels=8)
    g = LayeredVideoGenerator(len(WordTokenizer(VOCAB)), image_size=S, noise_dim=4, hidden=32, sprite_channels=16)
    h = torch.zeros(1, 32, requires_grad=True)
    loss = KeypointVAELoss(pool=4)
    opt = torch.optim.Adam([h, *encoder.parameters(), *g.parameters()], lr=3e-3)
    for _ in range(300):
        x, y, s = encoder(video)
        opt.zero_grad()
        loss.reconstruction(g.render(h, x, y, s), video).backward()
        opt.step()
    x, y, s = encoder(video)
    read = torch.stack([(x[0] + 1) * S / 2, (y[0] + 1) * S / 2], dim=1)  # back to pixels
    assert x.shape == y.shape == s.shape == (1, T) and (s > 0).all()
    assert ((read - read[0]) - (centres - centres[0])).norm(dim=1).max() < 1.0, read
    untrained = KeypointEncoder(channels=8)(video)
    still = torch.stack([(untrained[0][0] + 1) * S / 2, (untrained[1][0] + 1) * S / 2], dim=1)
    assert ((still - still[0]) - (centres - centres[0])).norm(dim=1).max() > 5.0  # an untrained one does not


def test_the_posterior_refuses_clips_of_another_length():
    post = MotionPosterior(num_frames=10, text_dim=4, noise_dim=2)
    mean, log_var = post(torch.zeros(3, 10), torch.zeros(3, 10), torch.ones(3, 10), torch.zeros(3, 4))
    assert mean.shape == log_var.shape == (3, 2) and log_var.min() >= -10 and log_var.max() <= 5
    with pytest.raises(ValueError, match="got 8 frames"):
        post(torch.zeros(3, 8), torch.zeros(3, 8), torch.ones(3, 8), torch.zeros(3, 4))


def module(**kw) -> KeypointVAEModule:
    n = len(WordTokenizer(VOCAB))
    g = LayeredVideoGenerator(n, image_size=32, noise_dim=4, hidden=32, sprite_channels=16)
    return KeypointVAEModule(g, KeypointEncoder(channels=8), MotionPosterior(5, 64, 4, hidden=32),
                             KeypointVAELoss(), VOCAB, **kw)


def test_a_training_step_reaches_every_network_and_generation_is_reproducible(tmp_path):
    dm = CirclesDataModule(settings={"num_videos": 16, "num_frames": 5, "image_size": 32, "radius": [2, 4],
                                     "speed": [1, 2]}, batch_size=8, cache_dir=str(tmp_path))
    model = module(ema_decay=0.9)
    model.check_data(dm)
    trainer = pl.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.fit(model, datamodule=dm)
    for prefix in ("generator.", "encoder.", "posterior."):
        moved = [n for n, p in model.named_parameters() if n.startswith(prefix) and not torch.equal(p, before[n])]
        assert moved, f"no parameter of {prefix} changed"
    assert not all(torch.equal(e, p) for e, p in zip(model.ema.parameters(), model.generator.parameters(), strict=True))
    a = model.generate(["circle moving left", "circle shrinking"], 5, seed=3)
    assert a.shape == (2, 5, 3, 32, 32) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, model.generate(["circle moving left", "circle shrinking"], 5, seed=3))
    with pytest.raises(ValueError, match="num_frames=0 is invalid"):
        model.generate(["circle moving left"], 0)


def test_the_module_refuses_what_does_not_fit_by_name(tmp_path):
    n = len(WordTokenizer(VOCAB))
    with pytest.raises(ValueError, match="model.generator: VideoGenerator has no code, render, trajectory"):
        KeypointVAEModule(VideoGenerator(n, base_channels=16), KeypointEncoder(), MotionPosterior(5, 64, 64),
                          KeypointVAELoss(), VOCAB)
    with pytest.raises(ValueError, match="loss GANHingeLoss is for the 'gan' family"):
        KeypointVAEModule(LayeredVideoGenerator(n), KeypointEncoder(), MotionPosterior(5, 64, 64), GANHingeLoss(),
                          VOCAB)
    with pytest.raises(ValueError, match="model.lr=0 is invalid"):
        module(lr=0)
    dm = CirclesDataModule(settings={"num_videos": 4, "num_frames": 6, "image_size": 32, "radius": [2, 4]},
                           cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"model.posterior.num_frames=5 does not match dataset.settings.num_frames=6"):
        module().check_data(dm)


def test_the_paths_script_scores_a_run_four_ways(train_cfg, capsys):
    from t2vlab.tasks.train import train

    cfg = train_cfg("model=keypoint_vae", "loss=keypoint_vae")
    train(cfg)
    path = Path(__file__).resolve().parents[1] / "scripts" / "keypoint_vae_paths.py"
    spec = importlib.util.spec_from_file_location("keypoint_vae_paths", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    table = script.main([cfg.paths.output_dir, "--clips", "2"])
    assert list(table) == ["real", "encoder path", "posterior mean, own path", "prior"]
    assert all(v == 1.0 for v in table["real"].values())  # real clips pass: the scorer's ceiling
    assert set(table["prior"]) == set(script.PROMPTS)
    assert "| posterior mean, own path |" in capsys.readouterr().out
