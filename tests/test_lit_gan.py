import pytest
import pytorch_lightning as pl
import torch

from t2vlab.data.circles import PROMPT_MOTIONS
from t2vlab.data.datamodule import CirclesDataModule
from t2vlab.lit.gan import GANModule
from t2vlab.models.gan.losses import GANBCELoss, GANHingeLoss, GANR3Loss
from t2vlab.models.gan.seed import SeedDiscriminator, SeedGenerator
from t2vlab.models.gan.video import VideoDiscriminator, VideoGenerator
from t2vlab.text.word_tokenizer import WordTokenizer, split_words

VOCAB = sorted({w for p in PROMPT_MOTIONS for w in split_words(p)})


def seed_module(loss, **kw):
    g = SeedGenerator(vocab_size=len(WordTokenizer(VOCAB)))
    return GANModule(g, SeedDiscriminator(), loss, VOCAB, **kw)


@pytest.mark.parametrize("loss", [GANBCELoss(), GANHingeLoss(), GANR3Loss(gamma=0.1)])
def test_seed_gan_fast_dev_run_updates_both_networks(loss):
    module = seed_module(loss, ema_decay=0.9)
    before_g = [p.clone() for p in module.generator.parameters()]
    before_d = [p.clone() for p in module.discriminator.parameters()]
    dm = CirclesDataModule({"num_videos": 8}, batch_size=4)
    trainer = pl.Trainer(fast_dev_run=True, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=dm)
    for before, net in ((before_g, module.generator), (before_d, module.discriminator)):
        assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert torch.isfinite(trainer.callback_metrics["train/loss_d"])


@pytest.mark.parametrize("loss", [GANHingeLoss(), GANR3Loss(gamma=0.1)])
def test_video_gan_fast_dev_run_and_any_length(loss):
    n = len(WordTokenizer(VOCAB))
    g, d = VideoGenerator(n, base_channels=32), VideoDiscriminator(n, base_channels=8)
    module = GANModule(g, d, loss, VOCAB)
    dm = CirclesDataModule({"num_videos": 8}, batch_size=4)
    trainer = pl.Trainer(fast_dev_run=True, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=dm)
    assert torch.isfinite(trainer.callback_metrics["train/loss_g"])
    assert module.generate(["circle moving up-right"], num_frames=16).shape == (1, 16, 3, 64, 64)


def test_video_gan_refuses_image_size_it_cannot_make():
    with pytest.raises(ValueError, match="image_size=48.*allowed"):
        VideoGenerator(10, image_size=48)


def test_generate_is_seeded_and_in_unit_range():
    module = seed_module(GANBCELoss()).eval()
    a = module.generate(["circle moving up-right", "circle shrinking"], num_frames=16, seed=1)
    b = module.generate(["circle moving up-right", "circle shrinking"], num_frames=16, seed=1)
    assert a.shape == (2, 16, 3, 64, 64) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1


def test_bad_learning_rate_and_foreign_loss_are_refused():
    with pytest.raises(ValueError, match="lr_g=0.*> 0"):
        seed_module(GANBCELoss(), lr_g=0)

    class SplitterLoss:
        family = "splitter"

    with pytest.raises(ValueError, match="splitter.*does not fit"):
        seed_module(SplitterLoss())


def test_word_classifier_term_needs_a_discriminator_that_predicts_words():
    with pytest.raises(ValueError, match="word_weight=1.0 needs a discriminator that predicts words"):
        seed_module(GANHingeLoss(), word_weight=1.0)
    with pytest.raises(ValueError, match="word_weight=-1 is invalid; allowed: >= 0"):
        seed_module(GANHingeLoss(), word_weight=-1)


def test_bag_of_words_marks_each_prompt_word_once():
    n = len(WordTokenizer(VOCAB))
    module = GANModule(VideoGenerator(n, base_channels=32), VideoDiscriminator(n, base_channels=8), GANHingeLoss(),
                       VOCAB, word_weight=1.0)
    ids, mask = module.tokenizer(["circle moving up-right", "circle shrinking"])
    bag = module._bag_of_words(ids, mask)
    words = [{module.tokenizer.vocab[i] for i in row.nonzero().flatten().tolist()} for row in bag]
    assert words == [{"circle", "moving", "up", "right"}, {"circle", "shrinking"}]
    logits, word_logits = module.discriminator(torch.zeros(2, 4, 3, 64, 64), ids, mask, words=True)
    assert logits.shape == (2,) and word_logits.shape == (2, n)


def test_lazy_r3_penalises_only_every_kth_discriminator_step():
    loss = GANR3Loss(gamma=0.1, every=2)
    calls = []
    penalty = loss.gradient_penalty
    loss.gradient_penalty = lambda logits, inputs: calls.append(len(calls)) or penalty(logits, inputs)
    module = seed_module(loss)
    trainer = pl.Trainer(max_steps=10, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=CirclesDataModule({"num_videos": 20}, batch_size=4))
    assert module.d_steps == 5 and len(calls) == 2 * 3  # R1 and R2 at discriminator steps 0, 2 and 4


def test_discriminator_blur_fades_linearly_and_bad_values_are_refused():
    module = seed_module(GANHingeLoss(), blur_sigma=4.0, blur_fade=8)
    seen = []
    for step in (0, 2, 4, 8, 20):
        module.d_steps = step
        seen.append(module.blur_now())
    assert seen == pytest.approx([4.0, 3.0, 2.0, 0.0, 0.0])
    assert seed_module(GANHingeLoss(), blur_sigma=4.0).blur_now() == 4.0  # no fade: the blur stays
    with pytest.raises(ValueError, match="model.blur_sigma=-1 is invalid; allowed: >= 0"):
        seed_module(GANHingeLoss(), blur_sigma=-1)


def test_the_blur_clock_survives_a_checkpoint(tmp_path):
    module = seed_module(GANHingeLoss(), blur_sigma=4.0, blur_fade=10)
    trainer = pl.Trainer(max_steps=6, accelerator="cpu", logger=False, default_root_dir=tmp_path,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=CirclesDataModule({"num_videos": 12}, batch_size=4))
    trainer.save_checkpoint(tmp_path / "x.ckpt")
    resumed = seed_module(GANHingeLoss(), blur_sigma=4.0, blur_fade=10)
    resumed.on_load_checkpoint(torch.load(tmp_path / "x.ckpt", weights_only=False))
    assert module.d_steps == resumed.d_steps == 3 and resumed.blur_now() == pytest.approx(4.0 * 0.7)
