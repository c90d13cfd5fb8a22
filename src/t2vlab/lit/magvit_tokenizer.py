"""The thin LightningModule that trains the MAGVIT tokenizer (stage 1 of the MAGVIT family).

Reconstruction loss plus the quantizer's auxiliary losses; optionally a perceptual (LPIPS) term
(`loss.perceptual_weight`) and an adversarial term from a GAN-family discriminator (`model.discriminator`,
`loss.adversarial_weight`, `loss.gan`), stepped like the GAN family steps its two optimisers; `train_frames`
trains on short random windows of the clips. It is not a video generator: after fit (and in evaluate.py) it
measures itself on held-out circles clips (`t2vlab.evaluation.reconstruction.tokenizer_report`): reconstruction
PSNR/SSIM, codebook usage, bits per clip, optionally FVD of the reconstructions.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from t2vlab.lit.family import FamilyModule
from t2vlab.text.word_tokenizer import WordTokenizer


class TokenizerModule(FamilyModule):
    family = "magvit_tokenizer"
    generates_video = False  # it measures itself: reconstruction quality and code usage

    def __init__(self, tokenizer: nn.Module, loss, vocab: list[str], discriminator: nn.Module | None = None,
                 lr: float = 1e-3, lr_d: float = 2e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0, warmup_steps: int = 100, min_lr_ratio: float = 0.02,
                 train_frames: int | None = None, eval_clips: int = 200, eval_seed: int = 1000003,
                 eval_fvd: bool = False, aux_start: int = 0, aux_ramp: int = 0) -> None:
        super().__init__()
        checks = [("lr", lr > 0, "> 0"), ("lr_d", lr_d > 0, "> 0"), ("weight_decay", weight_decay >= 0, ">= 0"),
                  ("warmup_steps", warmup_steps >= 0, ">= 0"), ("min_lr_ratio", 0 <= min_lr_ratio <= 1, "[0, 1]"),
                  ("eval_clips", eval_clips >= 1, ">= 1"), ("aux_start", aux_start >= 0, ">= 0"),
                  ("aux_ramp", aux_ramp >= 0, ">= 0"),
                  ("train_frames", train_frames is None or train_frames >= 1, "null (whole clips) or >= 1 frames")]
        self.check_arguments(checks, locals())
        self.check_loss(loss, "loss=magvit_tokenizer")
        if loss.adversarial_weight > 0 and discriminator is None:
            raise ValueError(f"loss.adversarial_weight={loss.adversarial_weight} needs model.discriminator (e.g. the "
                             "GAN family's t2vlab.models.gan.video.VideoDiscriminator); allowed: 0 without one")
        self.save_hyperparameters(ignore=["tokenizer", "loss", "discriminator"])
        self.automatic_optimization = False
        self.tokenizer, self.loss, self.discriminator = tokenizer, loss, discriminator
        self.words = WordTokenizer(vocab)

    @property
    def adversarial(self) -> bool:
        return self.discriminator is not None and self.loss.adversarial_weight > 0

    def configure_optimizers(self):
        h = self.hparams
        total = self.planned_steps()
        if self.adversarial:  # max_steps counts both optimisers' steps after the adversarial start
            total = max(1, total // 2)
        # warm-up, then cosine down to min_lr_ratio: small steps at the end place the edges exactly
        opt, schedule = self.adamw_warmup_cosine(self.tokenizer.parameters(), h.lr, h.warmup_steps, h.min_lr_ratio,
                                                 total, betas=tuple(h.betas), weight_decay=h.weight_decay)
        schedulers = [schedule]
        if self.discriminator is None:
            return [opt], schedulers
        opt_d = torch.optim.AdamW(self.discriminator.parameters(), lr=h.lr_d, betas=(0.0, 0.99))
        return [opt, opt_d], schedulers

    def training_step(self, batch: dict, batch_idx: int) -> None:
        opts = self.optimizers()
        opt = opts[0] if isinstance(opts, list) else opts
        video = self._window(batch["video"])
        recon, ids, aux = self.tokenizer(video)
        parts = self.loss.reconstruction(recon, video)
        loss = parts["recon"] + self.aux_scale(self.global_step) * aux["aux"]
        if self.loss.perceptual_weight > 0:
            parts["perceptual"] = self.loss.perceptual(recon, video)
            loss = loss + self.loss.perceptual_weight * parts["perceptual"]
        adversarial = self.adversarial and self.global_step >= self.loss.adversarial_start
        if adversarial:
            text = self._text(batch["text"])
            loss_g = self.loss.gan.generator(None, self.discriminator(recon * 2 - 1, *text))
            loss = loss + self.loss.adversarial_weight * loss_g
            self.log("train/adversarial_g", loss_g.detach())
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()
        self.lr_schedulers().step()
        if adversarial:
            self._discriminator_step(opts[1], video, recon.detach(), text)
        with torch.no_grad():
            mse = parts["l2"].clamp_min(1e-10)
            self.log_dict({"train/loss": loss.detach(), "train/l1": parts["l1"].detach(),
                           "train/psnr": -10 * torch.log10(mse),
                           **({"train/perceptual": parts["perceptual"].detach()} if "perceptual" in parts else {}),
                           **{f"train/{k}": v.detach() for k, v in aux.items()}}, prog_bar=True)

    def aux_scale(self, step: int) -> float:
        """The factor on the quantizer's auxiliary terms (LFQ's entropy and commitment) at a step: 0 before
        `aux_start`, then rising linearly to 1 over `aux_ramp` steps (1 from the start by default)."""
        h = self.hparams
        if step < h.aux_start:
            return 0.0
        return 1.0 if h.aux_ramp == 0 else min(1.0, (step - h.aux_start + 1) / h.aux_ramp)

    def _window(self, video: torch.Tensor) -> torch.Tensor:
        """train_frames: a random window of each batch. The tokenizer is causal and convolutional in time, so
        short windows teach it what whole clips need at a fraction of the cost, provided they hold what the
        clips hold: a window of the clip length minus 4k frames is padded at its end like the clips are (the
        last latent frame of a 16-frame clip covers three frames and a repeat; so does a 12-frame window's),
        and one of 9+ frames holds a whole four-frame group past the first."""
        n = self.hparams.train_frames
        if n is None or n >= video.shape[1]:
            return video
        start = int(torch.randint(0, video.shape[1] - n + 1, ()))
        return video[:, start:start + n]

    def _discriminator_step(self, opt, real: torch.Tensor, fake: torch.Tensor, text) -> None:
        loss_d = self.loss.gan.discriminator(self.discriminator(real * 2 - 1, *text),
                                             self.discriminator(fake * 2 - 1, *text))
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt.step()
        self.log("train/adversarial_d", loss_d.detach())

    def _text(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.words(texts)
        return ids.to(self.device), mask.to(self.device)

    @torch.no_grad()
    def measure(self, datamodule, out_dir: Path | None = None) -> dict:
        """Reconstruction quality and codebook usage on held-out clips rendered with `eval_seed`."""
        from t2vlab.evaluation.reconstruction import tokenizer_report

        return tokenizer_report(self.tokenizer, datamodule, self.hparams.eval_clips, self.hparams.eval_seed,
                                fvd=self.hparams.eval_fvd, out_dir=out_dir)
