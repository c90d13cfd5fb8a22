"""GAN objectives. Each takes discriminator logits (any shape) and returns a scalar.

`family` tells the training wrapper which models a loss fits; `relativistic` losses need the real logits
in the generator step too, the others do not, so the wrapper skips that discriminator pass for them.
"""

import torch
import torch.nn.functional as F


class GANBCELoss:
    """The write-up's loss, as BCE with logits (numerically safe, same optimum)."""

    family = "gan"
    relativistic = False

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def generator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake).mean()


class GANHingeLoss:
    family = "gan"
    relativistic = False

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def generator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()


class GANR3Loss:
    """Relativistic pairing loss (R3GAN); the wrapper adds gamma/2 * (R1 + R2) gradient penalties.

    `every` = k > 1 is lazy regularisation (StyleGAN2, Karras et al. 2020): the penalties on every k-th
    discriminator step only, weighted by k so that their average weight stays gamma/2. R3GAN itself is k = 1."""

    family = "gan"
    relativistic = True

    def __init__(self, gamma: float = 0.1, every: int = 1) -> None:
        if gamma < 0:
            raise ValueError(f"loss.gamma={gamma} is invalid; allowed: >= 0")
        if every < 1:
            raise ValueError(f"loss.every={every} is invalid; allowed: an integer >= 1")
        self.gamma, self.every = gamma, every

    def penalty_weight(self, d_step: int) -> float:
        """The weight of R1 + R2 at discriminator step `d_step` (counted from 0): 0 when it is skipped."""
        return self.gamma / 2 * self.every if d_step % self.every == 0 else 0.0

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(fake - real).mean()

    def generator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(real - fake).mean()

    @staticmethod
    def gradient_penalty(logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """E |grad_x D(x)|^2, kept in the graph so it can be minimised."""
        (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
        return grad.square().flatten(1).sum(1).mean()
