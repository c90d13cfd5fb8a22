"""A learned prior for the keypoint VAE's motion code: a small text-conditioned denoising diffusion model over z.

The VAE's default prior is N(0, I). With a weak KL (beta 0.01) the codes the posterior gives real clips do not fill
N(0, I): a draw from it can land between the codes of, say, a bounce off the top and one off the bottom, and the
generator then blends the two. `DiffusionPrior` is fitted to the posterior's codes instead (the aggregated
posterior, as latent diffusion fits its autoencoder's latents) and generation samples from it.

It is a DDPM (Ho et al. 2020) with diffusers' `DDPMScheduler` (`steps` steps, epsilon prediction), on the cosine
noise schedule of Nichol & Dhariwal (2021) instead of Ho et al.'s linear one:

    z_k  = sqrt(abar_k) z_0 + sqrt(1 - abar_k) eps,     eps ~ N(0, I), k uniform in {0 .. steps - 1}
    loss = mean || eps - eps_theta(z_k, k, c) ||^2      (c: the prompt's embedding, both z_0 and c detached)

and ancestral sampling from z_K ~ N(0, I) (Ho et al. eq. 11 with the variance beta tilde_k):

    z_{k-1} = (z_k - (1 - alpha_k) / sqrt(1 - abar_k) eps_theta) / sqrt(alpha_k) + sqrt(beta tilde_k) n,  n ~ N(0, I)
    beta tilde_k = (1 - abar_{k-1}) / (1 - abar_k) (1 - alpha_k),  no noise at k = 0.

eps_theta is an MLP on [z_k, c, sin/cos embedding of k]. Each clip's
code is noised at `draws` random steps per training step (more signal for the same forward pass of the VAE).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.models.embeddings import get_timestep_embedding
from torch import nn


class DiffusionPrior(nn.Module):
    def __init__(self, noise_dim: int, text_dim: int, hidden: int = 256, steps: int = 100, draws: int = 4) -> None:
        super().__init__()
        for key, value in (("noise_dim", noise_dim), ("text_dim", text_dim), ("hidden", hidden), ("steps", steps),
                           ("draws", draws)):
            if value < 1:
                raise ValueError(f"model.prior.{key}={value!r} is invalid; allowed: >= 1")
        self.noise_dim, self.steps, self.draws = noise_dim, steps, draws
        self.scheduler = DDPMScheduler(num_train_timesteps=steps, beta_schedule="squaredcos_cap_v2",
                                       clip_sample=False, prediction_type="epsilon")
        self.time_dim = 32
        self.net = nn.Sequential(nn.Linear(noise_dim + text_dim + self.time_dim, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, noise_dim))

    def _time(self, k: torch.Tensor) -> torch.Tensor:
        """[sin, cos] of k at frequencies 1000^(-i / 16), i < 16."""
        return get_timestep_embedding(k, self.time_dim, flip_sin_to_cos=False, downscale_freq_shift=0,
                                      max_period=1000)

    def forward(self, z: torch.Tensor, k: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """eps_theta: noised codes (B, noise_dim), steps k (B,) and text embeddings (B, text_dim) -> (B, noise_dim)."""
        return self.net(torch.cat([z.float(), text.float(), self._time(k)], dim=1))

    def loss(self, z0: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The denoising loss on codes z0 (B, noise_dim) given text (B, text_dim); neither gets a gradient."""
        z0 = z0.detach().float().repeat(self.draws, 1)
        text = text.detach().float().repeat(self.draws, 1)
        k = torch.randint(0, self.steps, (z0.shape[0],), device=z0.device)
        eps = torch.randn_like(z0)
        return F.mse_loss(self(self.scheduler.add_noise(z0, eps, k), k, text), eps)

    @torch.no_grad()
    def sample(self, text: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Codes (B, noise_dim) for text embeddings (B, text_dim) by ancestral sampling (the scheduler's
        `step`: variance beta tilde); the same generator state gives the same codes."""
        self.scheduler.set_timesteps(self.steps)
        z = torch.randn((text.shape[0], self.noise_dim), generator=generator).to(text.device)
        for k in self.scheduler.timesteps:
            eps = self(z, k.expand(z.shape[0]).to(z.device), text)
            z = self.scheduler.step(eps, k, z, generator=generator).prev_sample
        return z
