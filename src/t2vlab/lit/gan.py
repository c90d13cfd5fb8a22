"""The thin LightningModule for the GAN family: manual optimisation of any generator and discriminator.

A generator offers `noise_shape(num_frames)` and
`forward(noise, ids, mask, num_frames) -> (B,T,3,H,W) in [-1,1]`; a discriminator offers
`forward(video, ids, mask) -> logits`. The loss object decides the objective.

`word_weight > 0` adds an auxiliary-classifier term (AC-GAN, Odena et al. 2017, with words as labels): the
discriminator also predicts which vocabulary words a real clip's prompt contains, and the generator is
pushed to make clips whose predicted words are its prompt's. Words, not whole prompts, so the signal
composes: "up" and "right" are learned from the prompts that contain them, which is what a held-out
"up-right" needs. It needs a discriminator with `forward(..., words=True) -> (logits, word_logits)`.

`blur_sigma` > 0 blurs what the discriminator sees, real and generated alike, fading to no blur at `blur_fade`
discriminator steps (StyleGAN3 does the same for its first images): on blurred frames a misplaced object still
overlaps the real one, so the generator learns where it belongs before it learns its edges.

`coverage_min` = eta > 0 adds coverage_weight x mean over clips and frames of max(0, 1 - mean(alpha) / eta) to the
generator's loss, for a generator that returns its sprite's alpha (`model=video_gan_layered`): the minimum-area
hinge of Bielski and Favaro (2019), per frame (`models/gan/coverage.py`). It stops the generator from hiding its
sprite (out of the frame, faded out or shrunk to nothing).
"""

from __future__ import annotations

import copy
import inspect
from typing import Annotated

import torch
import torch.nn.functional as F
from annotated_types import Interval
from torch import nn

from t2vlab.lit.ema import update_ema
from t2vlab.lit.family import FamilyModule
from t2vlab.models.gan.blur import blur_video
from t2vlab.models.gan.coverage import coverage_penalty
from t2vlab.models.gan.losses import GANR3Loss
from t2vlab.text.word_tokenizer import WordTokenizer


class GANModule(FamilyModule):
    family = "gan"

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss, vocab: list[str],
                 lr_g: float = 2e-4, lr_d: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999),
                 ema_decay: Annotated[float, Interval(ge=0, lt=1)] | None = None, channels_last: bool = True,
                 word_weight: float = 0.0, blur_sigma: float = 0.0, blur_fade: int = 0, coverage_min: float = 0.0,
                 coverage_weight: float = 1.0) -> None:
        super().__init__()
        if word_weight < 0:
            raise ValueError(f"model.word_weight={word_weight} is invalid; allowed: >= 0")
        if word_weight > 0 and not getattr(discriminator, "predicts_words", False):
            raise ValueError(f"model.word_weight={word_weight} needs a discriminator that predicts words; "
                             f"{type(discriminator).__name__} does not (allowed: 0)")
        self.check_arguments([("lr_g", lr_g > 0, "> 0"), ("lr_d", lr_d > 0, "> 0"),
                              ("blur_sigma", blur_sigma >= 0, ">= 0"), ("blur_fade", blur_fade >= 0, ">= 0"),
                              ("coverage_min", 0 <= coverage_min <= 1, "[0, 1]"),
                              ("coverage_weight", coverage_weight >= 0, ">= 0")], locals())
        if coverage_min > 0 and "return_alpha" not in inspect.signature(generator.forward).parameters:
            raise ValueError(f"model.coverage_min={coverage_min} needs a generator that returns its sprite's alpha "
                             f"(model=video_gan_layered); {type(generator).__name__} does not (allowed: 0)")
        self.check_loss(loss, "loss=gan_hinge, loss=gan_bce, loss=gan_r3")
        self.save_hyperparameters(ignore=["generator", "discriminator", "loss"])
        self.automatic_optimization = False
        if channels_last:  # NHWC convolutions: about 3x faster on CPU (oneDNN), and faster on tensor cores
            generator, discriminator = (net.to(memory_format=torch.channels_last) for net in (generator, discriminator))
        self.generator, self.discriminator, self.loss = generator, discriminator, loss
        self.tokenizer = WordTokenizer(vocab)
        self.ema = copy.deepcopy(generator).requires_grad_(False) if ema_decay else None
        self.d_steps = 0  # discriminator steps taken: the clock of lazy regularisation and of the blur's fade

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gan_d_steps"] = self.d_steps  # a resumed run goes on with the fade where it stopped

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.d_steps = checkpoint.get("gan_d_steps", 0)

    def configure_optimizers(self):
        betas = tuple(self.hparams.betas)
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}  # one kernel for all parameters
        return (torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr_g, betas=betas, **fused),
                torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr_d, betas=betas, **fused))

    def blur_now(self) -> float:
        """The discriminator's input blur at this discriminator step: blur_sigma, falling linearly to 0 at
        blur_fade steps (blur_fade = 0: blur_sigma throughout)."""
        fade = self.hparams.blur_fade
        return self.hparams.blur_sigma * (max(0.0, 1 - self.d_steps / fade) if fade else 1.0)

    def _blurred(self, video: torch.Tensor, sigma: float) -> torch.Tensor:
        """What the discriminator sees under a blur of `sigma` image pixels. The blur runs at the discriminator's
        `render_size` where it has one (it averages frames down to that size first anyway): a depthwise
        convolution at 64 px costs several times the discriminator step on a CPU."""
        if sigma <= 0:
            return video
        size = getattr(self.discriminator, "render_size", video.shape[-1])
        if video.shape[-1] > size:
            factor = video.shape[-1] // size
            video = F.avg_pool2d(video.flatten(0, 1), factor).unflatten(0, video.shape[:2])
            sigma = sigma / factor
        return blur_video(video, sigma)

    def _text(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.tokenizer(texts)
        return ids.to(self.device), mask.to(self.device)

    def _noise(self, batch: int, num_frames: int, gen: torch.Generator | None = None) -> torch.Tensor:
        shape = (batch, *self.generator.noise_shape(num_frames))
        return torch.randn(shape, generator=gen).to(self.device)

    def training_step(self, batch: dict, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real = batch["video"] * 2 - 1  # (B,T,3,H,W) in [-1, 1]
        B, T = real.shape[:2]
        ids, mask = self._text(batch["text"])
        penalty = self.loss.penalty_weight(self.d_steps) if isinstance(self.loss, GANR3Loss) else 0.0
        penalised = penalty > 0
        sigma = self.blur_now()
        self.d_steps += 1

        with torch.no_grad():  # the D step needs fakes, not the generator's graph
            fake = self.generator(self._noise(B, T), ids, mask, T)
        if penalised:
            real, fake = real.detach().requires_grad_(True), fake.requires_grad_(True)
        real_seen = self._blurred(real, sigma)  # what the discriminator sees of the real clips, in both steps
        words = self.hparams.word_weight > 0
        if words:
            bag = self._bag_of_words(ids, mask)
            d_real, w_real = self.discriminator(real_seen, ids, mask, words=True)
        else:
            d_real = self.discriminator(real_seen, ids, mask)
        d_fake = self.discriminator(self._blurred(fake, sigma), ids, mask)
        loss_d = self.loss.discriminator(d_real, d_fake)
        if words:
            word_d = F.binary_cross_entropy_with_logits(w_real.float(), bag)
            loss_d = loss_d + self.hparams.word_weight * word_d
            self.log("train/word_d", word_d.detach(), sync_dist=True)
        if penalised:
            r1 = self.loss.gradient_penalty(d_real, real)
            r2 = self.loss.gradient_penalty(d_fake, fake)
            loss_d = loss_d + penalty * (r1 + r2)
            self.log_dict({"train/r1": r1.detach(), "train/r2": r2.detach()}, sync_dist=True)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()

        covered = self.hparams.coverage_min > 0
        if covered:
            fake, alpha = self.generator(self._noise(B, T), ids, mask, T, return_alpha=True)
        else:
            fake = self.generator(self._noise(B, T), ids, mask, T)
        fake = self._blurred(fake, sigma)
        if words:
            d_fake, w_fake = self.discriminator(fake, ids, mask, words=True)
        else:
            d_fake = self.discriminator(fake, ids, mask)
        if self.loss.relativistic:
            with torch.no_grad():
                d_real = self.discriminator(real_seen.detach(), ids, mask)
        loss_g = self.loss.generator(d_real.detach(), d_fake)
        if words:
            word_g = F.binary_cross_entropy_with_logits(w_fake.float(), bag)
            loss_g = loss_g + self.hparams.word_weight * word_g
            self.log("train/word_g", word_g.detach(), sync_dist=True)
        if covered:
            coverage = coverage_penalty(alpha, self.hparams.coverage_min)
            loss_g = loss_g + self.hparams.coverage_weight * coverage
            self.log("train/coverage", coverage.detach(), sync_dist=True)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self._update_ema()
        # averaged over processes under DDP (a no-op in one process)
        self.log_dict({"train/loss_d": loss_d.detach(), "train/loss_g": loss_g.detach()}, prog_bar=True, sync_dist=True)

    def _bag_of_words(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, V) multi-hot of the words present (padding dropped)."""
        bag = torch.zeros(ids.shape[0], len(self.tokenizer), device=ids.device)
        bag.scatter_(1, ids, mask.float())
        bag[:, 0] = 0
        return bag

    def _update_ema(self) -> None:
        if self.ema is not None:
            update_ema(self.ema, self.generator, self.hparams.ema_decay)

    @torch.no_grad()
    def generate(self, prompts: list[str], num_frames: int, seed: int = 0) -> torch.Tensor:
        """(B, T, C, H, W) in [0, 1]; the same seed gives the same videos."""
        if num_frames < 1:
            raise ValueError(f"num_frames={num_frames} is invalid; allowed: >= 1")
        net = self.ema if self.ema is not None else self.generator
        ids, mask = self._text(prompts)
        noise = self._noise(len(prompts), num_frames, torch.Generator().manual_seed(seed))
        return ((net(noise, ids, mask, num_frames).float() + 1) / 2).clamp(0, 1)
