import pytest
import torch

from t2vlab.models.gan.losses import GANBCELoss, GANHingeLoss, GANR3Loss
from t2vlab.models.gan.seed import SeedDiscriminator, SeedGenerator


def test_seed_generator_and_discriminator_shapes_and_text_is_trained():
    g, d = SeedGenerator(vocab_size=20), SeedDiscriminator()
    ids = torch.tensor([[1, 2, 3], [4, 5, 0]])
    mask = ids != 0
    video = g(torch.randn(2, 10, 100), ids, mask)
    assert video.shape == (2, 10, 3, 64, 64) and video.abs().max() <= 1
    logits = d(video, ids, mask)
    assert logits.shape == (2, 10)
    logits.mean().backward()
    # the embedding sits inside the generator, so its optimiser trains it and its state_dict saves it
    assert g.text.embedding.weight.grad is not None
    assert "text.embedding.weight" in g.state_dict()


@pytest.mark.parametrize("loss", [GANBCELoss(), GANHingeLoss(), GANR3Loss()])
def test_losses_prefer_a_discriminator_that_separates(loss):
    good_real, good_fake = torch.full((8,), 3.0), torch.full((8,), -3.0)
    assert loss.discriminator(good_real, good_fake) < loss.discriminator(good_fake, good_real)
    assert loss.generator(good_real, good_fake) > loss.generator(good_real, good_real + 1)


def test_r3_gradient_penalty_matches_analytic_value():
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.tensor([1.0, -2.0, 2.0])
    penalty = GANR3Loss.gradient_penalty(x @ w, x)
    assert torch.isclose(penalty, torch.tensor(9.0))
    with pytest.raises(ValueError, match="gamma"):
        GANR3Loss(gamma=-1)


def test_lazy_r3_penalty_runs_every_kth_step_with_k_times_the_weight():
    eager, lazy = GANR3Loss(gamma=0.2), GANR3Loss(gamma=0.2, every=4)
    assert [eager.penalty_weight(i) for i in range(3)] == pytest.approx([0.1, 0.1, 0.1])
    weights = [lazy.penalty_weight(i) for i in range(8)]
    assert weights == pytest.approx([0.4, 0, 0, 0, 0.4, 0, 0, 0])
    assert sum(weights) == pytest.approx(sum(eager.penalty_weight(i) for i in range(8)))  # same average weight
    with pytest.raises(ValueError, match="loss.every=0 is invalid; allowed: an integer >= 1"):
        GANR3Loss(every=0)
