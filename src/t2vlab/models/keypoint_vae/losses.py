"""The keypoint VAE's objective. With x the real clip, (x_e, y_e, s_e) the path the keypoint encoder reads off it,
z ~ q(z | path, text) = N(mu, diag exp(lv)) and h the generator's clip code from z and the text:

    L = L_rec + path_weight * L_path + beta * KL

    L_rec  = mse(R(h, path_e), x) + sum over sigma in blur_sigmas of mse(G_sigma P(R(h, path_e)), G_sigma P(x))
    L_path = mse(x_g, sg(x_e)) + mse(y_g, sg(y_e)) + mse(log s_g, sg(log s_e))
    KL     = mean over clips of sum_j (mu_j^2 + exp(lv_j) - 1 - lv_j) / 2

R renders h's sprite and background on a path; (x_g, y_g, s_g) is h's own path (the generator's oscillators);
P averages `pool` x `pool` pixels; G_sigma is a Gaussian blur of sigma pooled pixels; mse is the mean of squared
differences; sg stops the gradient, so the encoder's path is learned from the pixels alone and the generator's
path follows it. The blurred terms give a sprite drawn near the object a gradient towards it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from t2vlab.models.gan.blur import blur_video


class KeypointVAELoss:
    family = "keypoint_vae"

    def __init__(self, blur_sigmas: list[float] | tuple[float, ...] = (1.0, 2.0), pool: int = 4,
                 path_weight: float = 1.0, beta: float = 0.01) -> None:
        checks = [("blur_sigmas", all(s > 0 for s in blur_sigmas), "a list of sigmas > 0"), ("pool", pool >= 1, ">= 1"),
                  ("path_weight", path_weight >= 0, ">= 0"), ("beta", beta >= 0, ">= 0")]
        for key, ok, allowed in checks:
            if not ok:
                raise ValueError(f"loss.{key}={locals()[key]!r} is invalid; allowed: {allowed}")
        self.blur_sigmas, self.pool = [float(s) for s in blur_sigmas], pool
        self.path_weight, self.beta = path_weight, beta

    def _pooled(self, video: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(video.flatten(0, 1), self.pool).unflatten(0, video.shape[:2])

    def reconstruction(self, rendered: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        rendered, real = rendered.float(), real.float()
        loss = F.mse_loss(rendered, real)
        if self.blur_sigmas:
            small_r, small_x = self._pooled(rendered), self._pooled(real)
            for sigma in self.blur_sigmas:
                loss = loss + F.mse_loss(blur_video(small_r, sigma), blur_video(small_x, sigma))
        return loss

    @staticmethod
    def path(generated: tuple[torch.Tensor, ...], read: tuple[torch.Tensor, ...]) -> torch.Tensor:
        (xg, yg, sg), (xe, ye, se) = generated, (t.detach().float() for t in read)
        return (F.mse_loss(xg.float(), xe) + F.mse_loss(yg.float(), ye)
                + F.mse_loss(sg.float().log(), se.log()))

    @staticmethod
    def kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        mean, log_var = mean.float(), log_var.float()
        return 0.5 * (mean.square() + log_var.exp() - 1 - log_var).sum(dim=1).mean()

    def total(self, rec: torch.Tensor, path: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
        return rec + self.path_weight * path + self.beta * kl
