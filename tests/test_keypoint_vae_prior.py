import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from t2vlab.data.circles import PROMPT_MOTIONS
from t2vlab.data.datamodule import CirclesDataModule
from t2vlab.lit.keypoint_vae import KeypointVAEModule
from t2vlab.models.gan.layered import LayeredVideoGenerator
from t2vlab.models.keypoint_vae.encoder import KeypointEncoder, MotionPosterior
from t2vlab.models.keypoint_vae.losses import KeypointVAELoss
from t2vlab.models.keypoint_vae.prior import DiffusionPrior
from t2vlab.text.word_tokenizer import WordTokenizer, split_words

VOCAB = sorted({w for p in PROMPT_MOTIONS for w in split_words(p)})


def cosine_schedule(steps: int) -> tuple[list[float], list[float]]:
    """alpha_k and abar_k of the cosine schedule (Nichol & Dhariwal 2021), beta_k capped at 0.999, term by term."""
    def abar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    alphas = [1 - min(1 - abar((k + 1) / steps) / abar(k / steps), 0.999) for k in range(steps)]
    bars, prod = [], 1.0
    for a in alphas:
        prod *= a
        bars.append(prod)
    return alphas, bars


def test_the_denoising_loss_against_a_direct_transcription():
    prior = DiffusionPrior(noise_dim=3, text_dim=2, hidden=8, steps=10, draws=2)
    z0, text = torch.randn(4, 3), torch.randn(4, 2)
    torch.manual_seed(5)
    got = prior.loss(z0, text).item()
    torch.manual_seed(5)
    k = torch.randint(0, 10, (8,))
    eps = torch.randn(8, 3)
    _, bars = cosine_schedule(10)
    total = 0.0
    for i in range(8):
        a = bars[int(k[i])]
        zk = math.sqrt(a) * z0[i % 4] + math.sqrt(1 - a) * eps[i]
        pred = prior(zk.unsqueeze(0), k[i:i + 1], text[i % 4].unsqueeze(0))[0]
        total += sum((p - e) ** 2 for p, e in zip(pred.tolist(), eps[i].tolist(), strict=True))
    assert got == pytest.approx(total / 24, rel=1e-5)


def test_sampling_against_a_direct_transcription_of_ancestral_steps():
    prior = DiffusionPrior(noise_dim=2, text_dim=3, hidden=8, steps=6)
    text = torch.randn(5, 3)
    got = prior.sample(text, torch.Generator().manual_seed(9))
    alphas, bars = cosine_schedule(6)
    gen = torch.Generator().manual_seed(9)
    z = torch.randn(5, 2, generator=gen)
    with torch.no_grad():
        for k in range(5, -1, -1):
            eps = prior(z, torch.full((5,), k), text)
            mean = (z - (1 - alphas[k]) / math.sqrt(1 - bars[k]) * eps) / math.sqrt(alphas[k])
            noise = torch.randn(5, 2, generator=gen)
            if k > 0:
                mean = mean + math.sqrt((1 - bars[k - 1]) / (1 - bars[k]) * (1 - alphas[k])) * noise
            z = mean
    assert torch.allclose(got, z, atol=1e-4)
    assert torch.equal(got, prior.sample(text, torch.Generator().manual_seed(9)))


def test_the_prior_learns_two_modes_per_prompt_that_a_standard_normal_misses():
    torch.manual_seed(0)
    prior = DiffusionPrior(noise_dim=2, text_dim=2, hidden=64, steps=50)
    opt = torch.optim.Adam(prior.parameters(), 3e-3)
    modes = torch.tensor([[[-2.0, 0.0], [2.0, 0.0]], [[0.0, -2.0], [0.0, 2.0]]])  # (prompt, mode, 2)
    for _ in range(300):
        c, m = torch.randint(0, 2, (64,)), torch.randint(0, 2, (64,))
        loss = prior.loss(modes[c, m] + 0.1 * torch.randn(64, 2), F.one_hot(c, 2).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    for c in (0, 1):
        text = F.one_hot(torch.full((200,), c), 2).float()
        for codes, near_at_least in ((prior.sample(text, torch.Generator().manual_seed(1)), 0.85),
                                     (torch.randn(200, 2, generator=torch.Generator().manual_seed(1)), None)):
            dist = (codes[:, None] - modes[c][None]).norm(dim=2)  # (200, 2)
            near = dist.min(dim=1).values < 0.5
            if near_at_least is None:  # N(0, I): most draws fall between the modes
                assert near.float().mean() < 0.3
                continue
            assert near.float().mean() >= near_at_least
            share = (dist.argmin(dim=1)[near] == 0).float().mean()
            assert 0.25 <= share <= 0.75  # both modes, not one


@pytest.mark.parametrize("key", ["noise_dim", "text_dim", "hidden", "steps", "draws"])
def test_the_prior_refuses_bad_sizes_by_name(key):
    kw = {"noise_dim": 2, "text_dim": 2} | {key: 0}
    with pytest.raises(ValueError, match=f"model.prior.{key}=0 is invalid; allowed: >= 1"):
        DiffusionPrior(**kw)


def test_the_module_trains_the_prior_on_detached_codes_and_samples_from_it(tmp_path):
    n = len(WordTokenizer(VOCAB))
    g = LayeredVideoGenerator(n, image_size=32, noise_dim=4, hidden=32, sprite_channels=16)
    model = KeypointVAEModule(g, KeypointEncoder(channels=8), MotionPosterior(5, 64, 4, hidden=32), KeypointVAELoss(),
                              VOCAB, prior=DiffusionPrior(4, 64, hidden=16, steps=5), prior_fit_steps=3,
                              prior_fit_clips=12)
    text = g.text(*model._text(["circle moving left"] * 3))
    model.prior.loss(torch.randn(3, 4, requires_grad=True), text).backward()
    assert all(p.grad is None for p in g.parameters())  # the prior's loss reaches only the prior
    dm = CirclesDataModule(settings={"num_videos": 16, "num_frames": 5, "image_size": 32, "radius": [2, 4],
                                     "speed": [1, 2]}, batch_size=8, cache_dir=str(tmp_path))
    before = {n: p.detach().clone() for n, p in model.prior.named_parameters()}
    fitted = []
    model.fit_prior = lambda batches, fit=model.fit_prior: fitted.append(model.global_step) or fit(batches)
    trainer = pl.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    trainer.fit(model, datamodule=dm)
    assert any(not torch.equal(p, before[n]) for n, p in model.prior.named_parameters())
    assert fitted == [2] and "train/prior_fit" in trainer.callback_metrics  # once, at the last step
    prompts = ["circle moving left", "circle shrinking"]
    codes = model.draw_codes(g.text(*model._text(prompts)), torch.Generator().manual_seed(3))
    assert torch.equal(codes, model.prior.sample(g.text(*model._text(prompts)), torch.Generator().manual_seed(3)))
    a = model.generate(prompts, 5, seed=3)
    assert a.shape == (2, 5, 3, 32, 32) and torch.equal(a, model.generate(prompts, 5, seed=3))
    with pytest.raises(ValueError, match="model.prior_fit_steps=1 is invalid; allowed: >= 0, and 0 without a learned"):
        KeypointVAEModule(g, KeypointEncoder(), MotionPosterior(5, 64, 4), KeypointVAELoss(), VOCAB, prior_fit_steps=1)
    with pytest.raises(ValueError, match=r"model.prior_fit_steps=3 fits the prior at the last step of "
                                         r"trainer.max_steps=-1; allowed: a trainer.max_steps > 0"):
        pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, accelerator="cpu").fit(model, datamodule=dm)
    with pytest.raises(ValueError, match="model.prior: Linear has no loss and sample"):
        KeypointVAEModule(g, KeypointEncoder(), MotionPosterior(5, 64, 4), KeypointVAELoss(), VOCAB,
                          prior=torch.nn.Linear(2, 2))


def test_the_final_checkpoint_holds_the_fitted_prior(train_cfg):
    from t2vlab.tasks.train import train

    cfg = train_cfg("model=keypoint_vae_diffusion_prior", "loss=keypoint_vae", "model.prior_fit_steps=5",
                    "model.prior_fit_clips=16")
    metrics = train(cfg)
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    step = metrics["train/global_step"]
    periodic = torch.load(folder / f"step{step:06d}.ckpt", weights_only=False)["state_dict"]  # before the fit
    last = torch.load(folder / "last.ckpt", weights_only=False)["state_dict"]  # written after it
    prior = [k for k in last if k.startswith("prior.")]
    assert prior and any(not torch.equal(last[k], periodic[k]) for k in prior)
    assert all(torch.equal(last[k], periodic[k]) for k in last if k.startswith("generator."))
