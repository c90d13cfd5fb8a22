"""Objectives of the MAGVIT family: the tokenizer's reconstruction loss and the transformer's COMMIT loss.

`family` tells the training wrappers which models a loss fits (loss=magvit_tokenizer with
model=magvit_tokenizer, loss=magvit_commit with model=magvit)."""

from __future__ import annotations

import torch

from t2vlab.models.magvit.masking import commit_loss
from t2vlab.pretrained.alexnet_lpips import MIN_SIZE, as_rgb, load_lpips_net
from t2vlab.pretrained.unavailable import MetricUnavailable

PERCEPTUAL_HOW_TO = ("set loss.perceptual_backbone=/path/to/alexnet-owt-7be5be79.pth (torchvision's AlexNet), "
                     "run once with internet, or keep loss.perceptual_weight=0")


class TokenizerLoss:
    """l1 |x - x'| + l2 (x - x')^2 + the quantizer's auxiliary losses (weighted inside the quantizer: entropy
    and commitment) + `adversarial_weight` x a GAN loss on a discriminator from the GAN family (off at 0)
    + `perceptual_weight` x LPIPS (AlexNet) per frame, on `perceptual_frames` random frames of each clip (all
    when null). The perceptual network is the evaluation suite's LPIPS, frozen; it is loaded when the loss is
    built, so missing weights stop a run before any training."""

    family = "magvit_tokenizer"

    def __init__(self, l1_weight: float = 0.0, l2_weight: float = 1.0, adversarial_weight: float = 0.0,
                 adversarial_start: int = 0, gan=None, perceptual_weight: float = 0.0,
                 perceptual_backbone: str | None = None, perceptual_frames: int | None = None) -> None:
        for key, value in (("l1_weight", l1_weight), ("l2_weight", l2_weight),
                           ("adversarial_weight", adversarial_weight), ("adversarial_start", adversarial_start),
                           ("perceptual_weight", perceptual_weight)):
            if value < 0:
                raise ValueError(f"loss.{key}={value} is invalid; allowed: >= 0")
        if l1_weight == 0 and l2_weight == 0:
            raise ValueError("loss.l1_weight and loss.l2_weight are both 0; allowed: at least one > 0")
        if adversarial_weight > 0 and gan is None:
            raise ValueError(f"loss.adversarial_weight={adversarial_weight} needs loss.gan (a GAN-family loss, "
                             "e.g. t2vlab.models.gan.losses.GANHingeLoss); allowed: adversarial_weight=0 without one")
        if getattr(gan, "relativistic", False):  # its generator loss needs real logits and gradient penalties
            raise ValueError(f"loss.gan={type(gan).__name__} is relativistic, which the tokenizer's adversarial term "
                             "does not support; allowed: t2vlab.models.gan.losses.GANHingeLoss or GANBCELoss")
        if perceptual_frames is not None and perceptual_frames < 1:
            raise ValueError(f"loss.perceptual_frames={perceptual_frames} is invalid; allowed: null (every frame) "
                             "or >= 1")
        self.l1_weight, self.l2_weight = l1_weight, l2_weight
        self.adversarial_weight, self.adversarial_start, self.gan = adversarial_weight, adversarial_start, gan
        self.perceptual_weight, self.perceptual_frames = perceptual_weight, perceptual_frames
        self.perceptual_net = None
        if perceptual_weight > 0:
            try:
                self.perceptual_net, self.perceptual_source = load_lpips_net(perceptual_backbone,
                                                                             how_to_enable=PERCEPTUAL_HOW_TO)
            except MetricUnavailable as e:
                raise ValueError(f"loss.perceptual_weight={perceptual_weight} needs LPIPS weights: {e}") from None

    def reconstruction(self, recon: torch.Tensor, video: torch.Tensor) -> dict[str, torch.Tensor]:
        diff = recon.float() - video.float()
        l1, l2 = diff.abs().mean(), diff.square().mean()
        return {"l1": l1, "l2": l2, "recon": self.l1_weight * l1 + self.l2_weight * l2}

    def perceptual(self, recon: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """Mean LPIPS between (B, T, C, H, W) reconstructions and clips in [0, 1]; gradients reach `recon`."""
        if min(video.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"loss.perceptual_weight>0 on {min(video.shape[-2:])}-pixel frames is invalid; "
                             f"allowed: frames of at least {MIN_SIZE} pixels, or perceptual_weight=0")
        net = self.perceptual_net.to(recon.device)  # kept outside the LightningModule: never in a checkpoint
        b, t = video.shape[:2]
        if self.perceptual_frames is not None and self.perceptual_frames < t:
            pick = torch.rand(b, t, device=video.device).argsort(1)[:, :self.perceptual_frames]
            rows = torch.arange(b, device=video.device)[:, None]
            recon, video = recon[rows, pick], video[rows, pick]
        return net(as_rgb(recon.flatten(0, 1).float()), as_rgb(video.flatten(0, 1).float())).mean()


class CommitLoss:
    """Cross-entropy over all latent positions (label smoothing), with the COMMIT parts weighted:
    mask ([MASK] inputs), refine (condition-token inputs), recons (real-token inputs)."""

    family = "magvit"

    def __init__(self, label_smoothing: float = 1e-4, mask_weight: float = 1.0, refine_weight: float = 1.0,
                 recons_weight: float = 0.1) -> None:
        for key, value in (("mask_weight", mask_weight), ("refine_weight", refine_weight),
                           ("recons_weight", recons_weight)):
            if value < 0:
                raise ValueError(f"loss.{key}={value} is invalid; allowed: >= 0")
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"loss.label_smoothing={label_smoothing} is invalid; allowed: [0, 1)")
        self.label_smoothing = label_smoothing
        self.weights = {"mask": mask_weight, "refine": refine_weight, "recons": recons_weight}

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, kinds: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = commit_loss(logits, targets, kinds, self.label_smoothing)
        parts["total"] = sum(w * parts[k] for k, w in self.weights.items())
        return parts


def accuracy(logits: torch.Tensor, targets: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Fraction of `where` positions whose argmax is the target (0 when there are none)."""
    hit = (logits.argmax(-1) == targets) & where
    return hit.sum() / where.sum().clamp(min=1)

