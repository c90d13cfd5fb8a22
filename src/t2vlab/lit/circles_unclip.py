"""The thin LightningModule that trains the circles_unclip backbone, in three stages within one run.

Stage 1 (the first `ae_steps` batches): frame encoder + decoder as an autoencoder on single frames, with
a little noise on the embedding so that nearby embeddings decode to nearby frames. Stage 2 (the next
`prior_steps`): encoder and decoder frozen; the text encoder and the prior learn to denoise the standardised
embedding of a clip's first frame from its prompt (the Splitter starts from the prior's embedding and walks to
later frames). Prompts are dropped to "" now and then so classifier-free guidance works. Stage 3 (the batches
after that, `decoder_steps` in the experiment): the decoder alone, on the frozen encoder's clean embeddings. The
noise of stage 1 leaves the decoder drawing blurred, oval discs; stage 3 sharpens them without moving any
embedding, so the encoder, the prior and every embedding cache built on them stay what they were. After fit the
stack is saved where `backbone=circles_unclip` looks, loaded back through that backbone and measured.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from t2vlab.backbones.preprocess import clip_pixels, processor_settings
from t2vlab.lit.family import FamilyModule
from t2vlab.models.circles_unclip.stack import StackSizes, build_components

log = logging.getLogger(__name__)


class CirclesUnclipModule(FamilyModule):
    family = "circles_unclip"
    generates_video = False  # it exports the backbone and measures it after training

    def __init__(self, loss, vocab: list[str], sizes: dict | None = None, ae_steps: int = 1000,
                 prior_steps: int = 600, lr: float = 2e-3, prior_lr: float = 1e-3, decoder_lr: float = 3e-4,
                 frames_per_clip: int = 2, embed_noise: float = 0.05,
                 text_drop: float = 0.1, stats_clips: int = 2048, export_dir: str | None = None,
                 quality_clips: int = 200, quality_seed: int = 1000003) -> None:
        super().__init__()
        checks = [("ae_steps", ae_steps >= 1, ">= 1"), ("prior_steps", prior_steps >= 1, ">= 1"), ("lr", lr > 0, "> 0"),
                  ("prior_lr", prior_lr > 0, "> 0"), ("decoder_lr", decoder_lr > 0, "> 0"),
                  ("frames_per_clip", frames_per_clip >= 1, ">= 1"), ("embed_noise", embed_noise >= 0, ">= 0"),
                  ("text_drop", 0 <= text_drop < 1, "[0, 1)"), ("stats_clips", stats_clips >= 2, ">= 2"),
                  ("quality_clips", quality_clips >= 1, ">= 1")]
        self.check_arguments(checks, locals())
        self.check_loss(loss, "loss=unclip")
        self.save_hyperparameters(ignore=["loss"])
        self.automatic_optimization = False
        self.sizes = StackSizes(**(sizes or {}))
        parts = build_components(self.sizes, vocab)
        self.tokenizer, self.image_processor, self.scheduler = (parts["tokenizer"], parts["image_processor"],
                                                                parts["scheduler"])
        self.text_encoder, self.image_encoder = parts["text_encoder"], parts["image_encoder"]
        self.prior, self.decoder = parts["prior"], parts["decoder"]
        self.prior.clip_mean.requires_grad_(False)
        self.prior.clip_std.requires_grad_(False)
        self.moments_head = torch.nn.Linear(self.sizes.dim, 3)  # a training aid (see the loss); not exported
        self.register_buffer("stats_ready", torch.tensor(False))
        self.pixels = processor_settings(self.image_processor)
        self.loss = loss

    def configure_optimizers(self):
        ae = [*self.image_encoder.parameters(), *self.decoder.parameters(), *self.moments_head.parameters()]
        prior = [*self.text_encoder.parameters(), *(p for p in self.prior.parameters() if p.requires_grad)]
        opt_ae = torch.optim.AdamW(ae, lr=self.hparams.lr, weight_decay=0.0)
        opt_prior = torch.optim.AdamW(prior, lr=self.hparams.prior_lr, weight_decay=0.0)
        opt_decoder = torch.optim.AdamW(self.decoder.parameters(), lr=self.hparams.decoder_lr, weight_decay=0.0)
        # the autoencoder's rate: a short warm-up, then a cosine down to 2% by the end of its stage; the
        # decoder places the circle to a pixel only once the steps get small
        warmup, total = max(1, self.hparams.ae_steps // 20), self.hparams.ae_steps

        def ae_rate(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            done = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * done))

        return [opt_ae, opt_prior, opt_decoder], [torch.optim.lr_scheduler.LambdaLR(opt_ae, ae_rate)]

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (N,3,H,W) in [0,1] -> (N,D), through the same pixel recipe the backbone uses."""
        return self.image_encoder(clip_pixels(frames, self.pixels)).image_embeds

    def text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As the prior pipeline does it: padded to text_len, encoder called without the mask."""
        tok = self.tokenizer(prompts, padding="max_length", max_length=self.sizes.text_len, truncation=True,
                             return_tensors="pt")
        out = self.text_encoder(tok.input_ids.to(self.device))
        return out.last_hidden_state, out.text_embeds, tok.attention_mask.bool().to(self.device)

    def on_fit_start(self) -> None:
        settings = getattr(self.trainer.datamodule, "settings", None)
        if getattr(settings, "background", None) is None:
            raise ValueError(f"model=circles_unclip trains on synthetic circles; got the datamodule "
                             f"{type(self.trainer.datamodule).__name__}; allowed: dataset=circles")
        self.background = torch.tensor(settings.background, dtype=torch.float32, device=self.device) / 255

    def training_step(self, batch: dict, batch_idx: int) -> None:
        opt_ae, opt_prior, opt_decoder = self.optimizers()
        video = batch["video"]  # (B,T,3,H,W)
        if self.global_step < self.hparams.ae_steps:
            self._autoencoder_step(video, opt_ae)
        elif self.global_step < self.hparams.ae_steps + self.hparams.prior_steps:
            self._prior_step(video, batch["text"], opt_prior)
        else:
            self._decoder_step(video, opt_decoder)

    def _frames(self, video: torch.Tensor) -> torch.Tensor:
        """`frames_per_clip` distinct frames of each clip, flattened: (B*k, 3, H, W)."""
        B, T = video.shape[:2]
        k = min(self.hparams.frames_per_clip, T)
        pick = torch.rand(B, T, device=video.device).argsort(dim=1)[:, :k]
        return video[torch.arange(B, device=video.device)[:, None], pick].flatten(0, 1)

    def _autoencoder_step(self, video: torch.Tensor, opt) -> None:
        frames = self._frames(video)
        e = self.encode(frames).float()
        # relative to each feature's spread over the batch: the spread, not the norm, is what tells frames apart
        noise = self.hparams.embed_noise * e.detach().std(0, keepdim=True)
        recon = self.loss.reconstruction(self.decoder(e + noise * torch.randn_like(e)), frames)
        spread = self.loss.spread(e)
        moments = self.loss.moments(self.moments_head(e), frames, self.background)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(recon + spread + moments)
        opt.step()
        self.lr_schedulers().step()
        self.log("train/recon_loss", recon, prog_bar=True)
        self.log("train/spread_loss", spread)
        self.log("train/moments_loss", moments)

    @torch.no_grad()
    def _freeze_autoencoder(self) -> None:
        """End of stage 1. The decoder's input normalisation is reset to the exact statistics of the final
        encoder (its running averages trail an encoder that was still moving), and the prior's embedding
        mean and std are set from first frames: the prior works on standardised embeddings."""
        clips = self.trainer.datamodule.train_set
        n = min(self.hparams.stats_clips, len(clips))
        every, first = [], []
        for start in range(0, n, 32):
            videos = torch.stack([clips[i]["video"] for i in range(start, min(n, start + 32))]).to(self.device)
            e = self.encode(videos.flatten(0, 1)).float().view(*videos.shape[:2], -1)  # (b,T,D)
            every.append(e.flatten(0, 1))
            first.append(e[:, 0])
        every, e = torch.cat(every), torch.cat(first)
        self.decoder.norm.running_mean.copy_(every.mean(0))
        self.decoder.norm.running_var.copy_(every.var(0))
        self.prior.clip_mean.copy_(e.mean(0, keepdim=True))
        self.prior.clip_std.copy_(e.std(0, keepdim=True).clamp_min(1e-4))
        self.stats_ready.fill_(True)
        log.info("prior statistics from %d first frames: mean norm %.3f, mean std %.3f", n,
                 e.mean(0).norm().item(), e.std(0).mean().item())

    def _prior_step(self, video: torch.Tensor, prompts: list[str], opt) -> None:
        self.image_encoder.eval().requires_grad_(False)
        self.decoder.eval().requires_grad_(False)
        if not bool(self.stats_ready):
            self._freeze_autoencoder()
        with torch.no_grad():
            target = (self.encode(video[:, 0]).float() - self.prior.clip_mean) / self.prior.clip_std
        drop = torch.rand(len(prompts)) < self.hparams.text_drop
        prompts = ["" if d else p for p, d in zip(prompts, drop.tolist(), strict=True)]
        hidden, pooled, mask = self.text(prompts)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (len(target),), device=self.device)
        noise = torch.randn_like(target)
        noisy = self.scheduler.add_noise(target, noise, t)
        pred = self.prior(noisy, timestep=t, proj_embedding=pooled, encoder_hidden_states=hidden,
                          attention_mask=mask).predicted_image_embedding
        loss = self.loss.prior(pred, target)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()
        self.log("train/prior_loss", loss, prog_bar=True)

    def _decoder_step(self, video: torch.Tensor, opt) -> None:
        """Stage 3: the decoder on clean embeddings; its input normalisation keeps the statistics of stage 1's end."""
        self.image_encoder.eval().requires_grad_(False)
        self.decoder.train().requires_grad_(True)
        self.decoder.norm.eval()
        if not bool(self.stats_ready):  # a run whose prior stage was skipped
            self._freeze_autoencoder()
        frames = self._frames(video)
        with torch.no_grad():
            e = self.encode(frames).float()
        loss = self.loss.reconstruction(self.decoder(e), frames)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()
        self.decoder.eval()
        self.log("train/decoder_loss", loss, prog_bar=True)

    def after_fit(self, datamodule, out_dir: Path) -> dict:
        """Save the stack for backbone=circles_unclip, load it back through the backbone, measure it."""
        from t2vlab.backbones.circles_unclip import CirclesUnclipBackbone, export_stack
        from t2vlab.backbones.quality import circles_quality

        if self.global_step <= self.hparams.ae_steps:
            log.warning("training stopped before the prior stage (%d of %d autoencoder steps): the prior is untrained",
                        self.global_step, self.hparams.ae_steps)
        target = Path(self.hparams.export_dir or out_dir / "backbone")
        export_stack(self, out_dir / "backbone")
        if target != out_dir / "backbone":
            export_stack(self, target)
        backbone = CirclesUnclipBackbone(path=str(target), device=str(self.device))
        metrics = circles_quality(backbone, datamodule.settings, self.hparams.quality_clips, self.hparams.quality_seed,
                                  prompts=datamodule.prompts + datamodule.holdout_prompts)
        metrics["unclip/exported_to"] = str(target)
        metrics["unclip/identity"] = backbone.identity
        return metrics
