"""The thin LightningModule of the keypoint VAE: the layered generator (`models/gan/layered.py`) trained as the
decoder of a conditional VAE whose encoder reads the object's path off the real frames, with no discriminator.

Per batch: the keypoint encoder reads the path (x_t, y_t, s_t) of each real clip; the posterior q(z | path, text)
gives z; the generator's clip code h = code(z, text) renders its sprite and background on the encoder's path (the
reconstruction, which trains the encoder, the sprite and the background) and predicts its own path from its
oscillators (trained towards the encoder's). The objective is `models/keypoint_vae/losses.py`. Generation draws
z from the prior and renders the generator's own path: text in, clip out, as the GAN family's generators do. The
prior is N(0, I) (`prior: null`, the VAE's) or a learned one fitted to the posterior's codes as training goes
(`models/keypoint_vae/prior.py`: its loss is added to the objective and reaches only the prior's weights). The
codes move while the VAE trains, so the prior lags them; `prior_fit_steps` > 0 fits it further at the last training
step, on the codes of `prior_fit_clips` training clips from the finished encoder and posterior (before the final
checkpoint is written, so the checkpoint holds the fitted prior).

It borrows from Jakab et al. (2018: a keypoint bottleneck learned by reconstruction) and Kim et al. (2019:
"Unsupervised keypoint learning for guiding class-conditional video prediction", a conditional VAE on keypoint
motion) and implements neither paper.
"""

from __future__ import annotations

import copy
from typing import Annotated

import torch
from annotated_types import Interval
from torch import nn

from t2vlab.lit.ema import update_ema
from t2vlab.lit.family import FamilyModule
from t2vlab.text.word_tokenizer import WordTokenizer


class KeypointVAEModule(FamilyModule):
    family = "keypoint_vae"

    def __init__(self, generator: nn.Module, encoder: nn.Module, posterior: nn.Module, loss, vocab: list[str],
                 prior: nn.Module | None = None, lr: float = 1e-3,
                 ema_decay: Annotated[float, Interval(ge=0, lt=1)] | None = None, prior_fit_steps: int = 0,
                 prior_fit_clips: int = 2048) -> None:
        super().__init__()
        self.check_arguments([("lr", lr > 0, "> 0"),
                              ("ema_decay", ema_decay is None or 0 <= ema_decay < 1, "null or [0, 1)"),
                              ("prior_fit_steps", prior_fit_steps >= 0 and (prior is not None or not prior_fit_steps),
                               ">= 0, and 0 without a learned prior (model.prior)"),
                              ("prior_fit_clips", prior_fit_clips >= 1, ">= 1")], locals())
        missing = [m for m in ("text", "code", "render", "trajectory") if not hasattr(generator, m)]
        if missing:
            raise ValueError(f"model.generator: {type(generator).__name__} has no {', '.join(missing)}; allowed: a "
                             "generator that renders a given path (t2vlab.models.gan.layered.LayeredVideoGenerator)")
        self.check_loss(loss, "loss=keypoint_vae")
        if prior is not None and not all(hasattr(prior, m) for m in ("loss", "sample")):
            raise ValueError(f"model.prior: {type(prior).__name__} has no loss and sample; allowed: null (N(0, I)) "
                             "or t2vlab.models.keypoint_vae.prior.DiffusionPrior")
        self.save_hyperparameters(ignore=["generator", "encoder", "posterior", "loss", "prior"])
        self.generator, self.encoder, self.posterior, self.loss = generator, encoder, posterior, loss
        self.prior = prior
        self.tokenizer = WordTokenizer(vocab)
        self.ema = copy.deepcopy(generator).requires_grad_(False) if ema_decay else None

    def check_data(self, datamodule) -> None:
        frames = getattr(getattr(datamodule, "settings", None), "num_frames", None)
        if frames is not None and frames != self.posterior.num_frames:
            raise ValueError(f"model.posterior.num_frames={self.posterior.num_frames} does not match "
                             f"dataset.settings.num_frames={frames}; allowed: the data set's frame count")

    def configure_optimizers(self):
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        nets = [n for n in (self.generator, self.encoder, self.posterior, self.prior) if n is not None]
        return torch.optim.Adam([p for net in nets for p in net.parameters()], lr=self.hparams.lr, **fused)

    def _text(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.tokenizer(texts)
        return ids.to(self.device), mask.to(self.device)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        real = batch["video"] * 2 - 1  # (B, T, 3, H, W) in [-1, 1]
        T = real.shape[1]
        ids, mask = self._text(batch["text"])
        path = self.encoder(real)
        text = self.generator.text(ids, mask)
        mean, log_var = self.posterior(*(p.detach() for p in path), text)
        z = self.posterior.draw(mean, log_var)
        h = self.generator.code(z, text)
        rec = self.loss.reconstruction(self.generator.render(h, *path), real)
        path_loss = self.loss.path(self.generator.trajectory(h, T), path)
        kl = self.loss.kl(mean, log_var)
        loss = self.loss.total(rec, path_loss, kl)
        terms = {"train/loss": loss, "train/reconstruction": rec, "train/path": path_loss, "train/kl": kl}
        if self.prior is not None:  # z and the text are detached inside: only the prior learns from this term
            terms["train/prior"] = self.prior.loss(z, text)
            loss = loss + terms["train/prior"]
        self.log_dict({k: v.detach() for k, v in terms.items()}, prog_bar=True, sync_dist=True)
        return loss

    def on_fit_start(self) -> None:
        if self.hparams.prior_fit_steps and self.trainer.max_steps <= 0:
            raise ValueError(f"model.prior_fit_steps={self.hparams.prior_fit_steps} fits the prior at the last step "
                             f"of trainer.max_steps={self.trainer.max_steps}; allowed: a trainer.max_steps > 0, or "
                             "model.prior_fit_steps=0")

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.ema is not None:
            update_ema(self.ema, self.generator, self.hparams.ema_decay)
        if self.hparams.prior_fit_steps and self.global_step == self.trainer.max_steps:
            data = self.trainer.datamodule
            self.fit_prior(data.train_dataloader() if data is not None else self.trainer.train_dataloader)

    def fit_prior(self, batches) -> None:
        """`prior_fit_steps` Adam steps (lr as the VAE's, 256 codes each) of the prior's loss on codes drawn from the
        posterior of the first `prior_fit_clips` clips of `batches`, a fresh draw from q(z | path, text) each step."""
        means, log_vars, texts, seen = [], [], [], 0
        with torch.no_grad():
            for batch in batches:
                real = batch["video"].to(self.device) * 2 - 1
                text = self.generator.text(*self._text(batch["text"]))
                mean, log_var = self.posterior(*self.encoder(real), text)
                means.append(mean.float()), log_vars.append(log_var.float()), texts.append(text.float())
                seen += len(mean)
                if seen >= self.hparams.prior_fit_clips:
                    break
        mean, log_var, text = (torch.cat(t)[:self.hparams.prior_fit_clips] for t in (means, log_vars, texts))
        opt = torch.optim.Adam(self.prior.parameters(), lr=self.hparams.lr)
        with torch.enable_grad():
            for _ in range(self.hparams.prior_fit_steps):
                pick = torch.randint(0, len(mean), (256,), device=mean.device)
                loss = self.prior.loss(self.posterior.draw(mean[pick], log_var[pick]), text[pick])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self.log("train/prior_fit", loss.detach())

    @torch.no_grad()
    def generate(self, prompts: list[str], num_frames: int, seed: int = 0) -> torch.Tensor:
        """(B, T, C, H, W) in [0, 1]: z from the prior (seeded by `seed`), the generator's own path; the same seed
        gives the same videos."""
        if num_frames < 1:
            raise ValueError(f"num_frames={num_frames} is invalid; allowed: >= 1")
        net = self.ema if self.ema is not None else self.generator
        ids, mask = self._text(prompts)
        z = self.draw_codes(net.text(ids, mask), torch.Generator().manual_seed(seed))
        return ((net(z, ids, mask, num_frames).float() + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def draw_codes(self, text: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Motion codes z (B, noise_dim) for text embeddings (B, text_dim): N(0, I), or the learned prior's."""
        if self.prior is not None:
            return self.prior.sample(text, generator)
        return torch.randn((text.shape[0], self.generator.noise_dim), generator=generator).to(text.device)
