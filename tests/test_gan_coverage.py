import pytest
import pytorch_lightning as pl
import torch

from t2vlab.data.circles import PROMPT_MOTIONS
from t2vlab.data.datamodule import CirclesDataModule
from t2vlab.lit.gan import GANModule
from t2vlab.models.gan.coverage import coverage_penalty
from t2vlab.models.gan.layered import LayeredVideoGenerator
from t2vlab.models.gan.losses import GANHingeLoss
from t2vlab.models.gan.seed import SeedDiscriminator, SeedGenerator
from t2vlab.models.gan.video import VideoDiscriminator
from t2vlab.text.word_tokenizer import WordTokenizer, split_words

VOCAB = sorted({w for p in PROMPT_MOTIONS for w in split_words(p)})


def direct_penalty(alpha: torch.Tensor, eta: float) -> float:
    """mean over clips b and frames t of max(0, 1 - (1 / HW) sum_{h,w} alpha[b, t, 0, h, w] / eta), term by term."""
    B, T, _, H, W = alpha.shape
    total = 0.0
    for b in range(B):
        for t in range(T):
            area = sum(alpha[b, t, 0, h, w].item() for h in range(H) for w in range(W)) / (H * W)
            total += max(0.0, 1 - area / eta)
    return total / (B * T)


def test_coverage_penalty_against_a_direct_transcription():
    torch.manual_seed(0)
    alpha = torch.rand(2, 3, 1, 6, 6) * torch.tensor([0.0, 0.05, 1.0]).view(1, 3, 1, 1, 1)  # empty, thin, full
    for eta in (0.01, 0.1, 0.5):
        assert coverage_penalty(alpha, eta).item() == pytest.approx(direct_penalty(alpha, eta), rel=1e-5)
    assert coverage_penalty(torch.zeros(1, 2, 1, 4, 4), 0.02).item() == 1.0  # nothing drawn
    assert coverage_penalty(torch.full((1, 2, 1, 4, 4), 0.03), 0.02).item() == 0.0  # enough drawn
    with pytest.raises(ValueError, match=r"model.coverage_min=0 is invalid; allowed: \(0, 1\]"):
        coverage_penalty(alpha, 0)


def layered(**kw) -> LayeredVideoGenerator:
    return LayeredVideoGenerator(len(WordTokenizer(VOCAB)), hidden=32, sprite_channels=16, **kw)


def test_the_layered_generator_returns_the_alpha_it_composes_with():
    g = layered(keep_in_frame=0.8).eval()
    ids, mask = WordTokenizer(VOCAB)(["circle moving left", "circle shrinking"])
    noise = torch.randn(2, g.noise_dim)
    video, alpha = g(noise, ids, mask, 5, return_alpha=True)
    assert torch.equal(video, g(noise, ids, mask, 5)) and alpha.shape == (2, 5, 1, 64, 64)
    assert 0 <= alpha.min() and alpha.max() <= 1 and alpha.mean() > 0  # a sprite is drawn at init


def test_gan_module_adds_the_hinge_to_the_generator_loss_and_refuses_generators_without_alpha():
    n = len(WordTokenizer(VOCAB))
    with pytest.raises(ValueError, match="model.coverage_min=0.01 needs a generator that returns its sprite's alpha"):
        GANModule(SeedGenerator(vocab_size=n), SeedDiscriminator(), GANHingeLoss(), VOCAB, coverage_min=0.01)
    with pytest.raises(ValueError, match="model.coverage_weight=-1 is invalid"):
        GANModule(layered(), VideoDiscriminator(n, base_channels=8), GANHingeLoss(), VOCAB, coverage_weight=-1)
    # eta = 1 asks for a sprite over the whole frame: the hinge is large, and weighted by 100 it dominates the
    # generator's loss (the hinge loss of an untrained discriminator is about 0)
    module = GANModule(layered(), VideoDiscriminator(n, base_channels=8), GANHingeLoss(), VOCAB, coverage_min=1.0,
                       coverage_weight=100.0)
    trainer = pl.Trainer(fast_dev_run=True, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=CirclesDataModule({"num_videos": 8}, batch_size=4))
    coverage = trainer.callback_metrics["train/coverage"]
    assert 0.5 < coverage <= 1.0
    assert abs(trainer.callback_metrics["train/loss_g"] - 100 * coverage) < 5
