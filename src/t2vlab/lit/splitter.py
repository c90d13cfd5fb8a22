"""The thin LightningModule of the Splitter family: training steps on cached embeddings, and generation
through the frozen backbone.

A batch holds B clips from the embedding cache: frames (B,T,D) padded, lengths (B,), text hidden states
(B,L,D), the prior's embedding (B,D). Per clip K frames are sampled: the first, the last and K-2 distinct
random ones between, sorted (s_0 = 0 < s_1 < ... < s_{K-1} = n-1). Every step type runs on all clips at
once, so one optimizer step covers the whole batch (the reference took one step per clip):

- base: from the prior (standing for frame 0) to every sampled frame, rise = s_k / n; with `reverse`, also
  from the last frame's counterpart (prior + img_last - img_0) back to the earlier ones, rise < 0;
- rotation: from frame s_j to s_{j+1}; the start is the prior softly rotated by R(img_0 -> img_s), the
  (normalised) text softly rotated by R(prior -> that start) inside the network;
- regression: the same pairs, starting from the model's own detached base prediction for s_j; its loss
  weight is the mean accuracy of the last `regression_window` epochs (0.5 before there is one).
Targets are always start + (img_t - img_s). Accuracy = cosine(predicted, true embedding), per step type.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from t2vlab.lit.schedules import warmup_cosine
from t2vlab.models.splitter.rotation import soft_rotate

MODES = ("step", "regression")


class SplitterModule(pl.LightningModule):
    family = "splitter"
    needs_backbone = True  # the train/evaluate tasks attach backbone=... and serve cached embeddings

    def __init__(self, net: torch.nn.Module, loss, vocab: list[str] | None = None, lr: float = 1e-3,
                 weight_decay: float = 0.01, warmup_steps: int = 100, frames_per_clip: int = 4,
                 base_step: bool = True, reverse: bool = True, rotation_step: bool = True,
                 regression_step: bool = True, regression_window: int = 3, rotation_power: float = 1.0,
                 dropout_reg: float = 1e-3, mode: str = "step", increment: float | None = None,
                 fix_text_emb: bool = True, train_start: str = "prior") -> None:
        super().__init__()
        checks = [("lr", lr > 0, "> 0"), ("weight_decay", weight_decay >= 0, ">= 0"),
                  ("warmup_steps", warmup_steps >= 0, ">= 0"), ("frames_per_clip", frames_per_clip >= 2, ">= 2"),
                  ("regression_window", regression_window >= 1, ">= 1"),
                  ("rotation_power", rotation_power > 0, "> 0"), ("dropout_reg", dropout_reg >= 0, ">= 0"),
                  ("mode", mode in MODES, ", ".join(MODES)),
                  ("train_start", train_start in ("prior", "first_frame"), "prior, first_frame"),
                  ("increment", increment is None or 0 < abs(increment) < 1, "null (1/num_frames) or 0 < |x| < 1"),
                  ("base_step", base_step or rotation_step, "at least one of base_step, rotation_step")]
        for key, ok, allowed in checks:
            if not ok:
                raise ValueError(f"model.{key}={locals()[key]} is invalid; allowed: {allowed}")
        if regression_step and not base_step:
            raise ValueError("model.regression_step=true needs model.base_step=true: it starts from the base "
                             "step's predictions")
        if getattr(loss, "family", None) != self.family:
            raise ValueError(f"loss {type(loss).__name__} is for the {getattr(loss, 'family', '?')!r} family and "
                             "does not fit the splitter models")
        self.save_hyperparameters(ignore=["net", "loss"])
        self.net, self.loss = net, loss
        self.backbone = None  # frozen, outside the state dict; attached by the train/evaluate tasks
        self.register_buffer("acc_history", torch.zeros(regression_window))
        self.register_buffer("acc_epochs", torch.zeros((), dtype=torch.long))
        self._epoch_acc: list[float] = []

    def check_generation(self, name: str = "generation") -> None:
        """Generation settings changed after training (evaluate.py generation.<key>=..., or train.py
        evaluation.variants.<variant>.<key>=...); `name` is where they were set, for the error."""
        mode, increment = self.hparams.mode, self.hparams.increment
        if mode not in MODES:
            raise ValueError(f"{name}.mode={mode} is invalid; allowed: {', '.join(MODES)}")
        if increment is not None and not 0 < abs(increment) < 1:
            raise ValueError(f"{name}.increment={increment} is invalid; allowed: null (1/num_frames) or "
                             "0 < |x| < 1")

    def attach_backbone(self, backbone) -> None:
        if backbone.dim != self.net.dim or backbone.text_len != self.net.text_len:
            raise ValueError(f"backbone {backbone.name} has D={backbone.dim}, L={backbone.text_len}; the network was "
                             f"built for D={self.net.dim}, L={self.net.text_len}")
        self.backbone = backbone

    # ---------------------------------------------------------------- training
    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = max(1, self.trainer.max_steps if self.trainer.max_steps > 0 else 10_000)
        rate = warmup_cosine(min(self.hparams.warmup_steps, total // 2), total, 0.05)
        return {"optimizer": opt,
                "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, rate), "interval": "step"}}

    @property
    def regression_weight(self) -> float:
        """Mean accuracy of the last `regression_window` epochs; 0.5 before the first epoch ends."""
        seen = int(min(self.acc_epochs.item(), len(self.acc_history)))
        return float(self.acc_history[:seen].mean().clamp(0, 1)) if seen else 0.5

    def sample_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) clip lengths -> (B,K) sorted frame indices: 0, K-2 distinct random ones between, n-1.
        A clip with fewer than K frames repeats some in-between frames."""
        K = self.hparams.frames_per_clip
        B, T = len(lengths), int(lengths.max())
        pos = torch.arange(T, device=lengths.device)[None]
        inside = (pos >= 1) & (pos <= lengths[:, None] - 2)
        scores = torch.where(inside, torch.rand(B, T, device=lengths.device), torch.full((B, T), -1.0,
                                                                                        device=lengths.device))
        mid = scores.topk(K - 2, dim=1).indices if K > 2 else pos.new_zeros(B, 0)
        mid = torch.minimum(mid.clamp_min(1), (lengths[:, None] - 2).clamp_min(1)) if K > 2 else mid
        idx = torch.cat([pos.new_zeros(B, 1).expand(B, 1), mid.sort(dim=1).values, (lengths - 1)[:, None]], dim=1)
        return idx

    def _predict(self, hidden, start: torch.Tensor, rise: torch.Tensor, **kw) -> torch.Tensor:
        """hidden (B,L,D) or net.share_text(hidden) with start (B,D), rise (B,); or J predictions per text: start
        (B,J,D), rise (B,J)."""
        return self.net(hidden, start, rise, **kw).float()

    def _text_turn(self, v1: torch.Tensor, v2: torch.Tensor, c: torch.Tensor | None = None) -> tuple:
        """The soft rotation v1 -> v2 the text undergoes, blended by c (default cos(v1, v2)) clipped to [0,1]
        and raised to rotation_power."""
        c = F.cosine_similarity(v1, v2, dim=-1) if c is None else c
        return v1, v2, c.clamp(0, 1) ** self.hparams.rotation_power

    def _score(self, name: str, pred, start, change, weight: float = 1.0) -> torch.Tensor:
        terms = self.loss(pred, start, change)
        acc = F.cosine_similarity(pred.float(), (start + change).float(), dim=-1).mean()
        self.log(f"train/acc_{name}", acc, prog_bar=name == "base")
        self.log(f"train/loss_{name}", terms["loss"].mean())
        if name == "base":
            self._epoch_acc.append(float(acc.detach()))
        return weight * terms["loss"].mean()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        h = self.hparams
        frames, lengths = batch["frames"].float(), batch["lengths"]
        hidden, prior = batch["hidden"].float(), batch["prior"].float()
        text = self.net.share_text(hidden)  # its maps computed once for every step type below
        B, _, D = frames.shape
        idx = self.sample_frames(lengths)  # (B,K)
        K = idx.shape[1]
        img = frames.gather(1, idx[..., None].expand(-1, -1, D))  # (B,K,D)
        # what stands for frame 0: the prior's embedding (the write-up), or the clip's own first frame, so
        # that start and change come from the same clip
        anchor = prior if h.train_start == "prior" else img[:, 0]
        n = lengths.float()[:, None]
        total = torch.zeros((), device=self.device)
        base_pred = None

        if h.base_step:
            starts = anchor[:, None].expand(-1, K - 1, -1)
            change = img[:, 1:] - img[:, :1]
            rise = (idx[:, 1:] - idx[:, :1]).float() / n
            if h.reverse:  # the clip played backwards, from its last frame's counterpart
                last = anchor + img[:, -1] - img[:, 0]
                starts = torch.cat([starts, last[:, None].expand(-1, K - 1, -1)], dim=1)
                change = torch.cat([change, img[:, :-1] - img[:, -1:]], dim=1)
                rise = torch.cat([rise, (idx[:, :-1] - idx[:, -1:]).float() / n], dim=1)
            pred = self._predict(text, starts, rise)  # (B,J,D): the clip's text is encoded once
            total = total + self._score("base", pred.reshape(-1, D), starts.reshape(-1, D), change.reshape(-1, D))
            base_pred = pred[:, : K - 1]  # forward predictions for s_1..s_{K-1}

        pairs = K - 2  # (s_j, s_{j+1}) for j = 1..K-2: both after the first frame
        if pairs > 0 and (h.rotation_step or h.regression_step):
            s_img, t_img = img[:, 1:-1], img[:, 2:]  # (B,P,D)
            rise = (idx[:, 2:] - idx[:, 1:-1]).float() / n  # (B,P)
            change = (t_img - s_img).reshape(-1, D)
            prior_p = anchor[:, None].expand(-1, pairs, -1)  # (B,P,D)
            if h.rotation_step:
                first = img[:, :1].expand(-1, pairs, -1)
                start = soft_rotate(prior_p.reshape(-1, D), first.reshape(-1, D), s_img.reshape(-1, D),
                                    F.cosine_similarity(first, s_img, dim=-1).reshape(-1),
                                    h.rotation_power).view(B, pairs, D)
                pred = self._predict(text, start, rise, rotation=self._text_turn(prior_p, start))
                total = total + self._score("rotation", pred.reshape(-1, D), start.reshape(-1, D), change)
            if h.regression_step:
                start = base_pred[:, :-1].detach()  # (B,P,D): the model's own frame s_j
                pred = self._predict(text, start, rise, rotation=self._text_turn(prior_p, start))
                total = total + self._score("regression", pred.reshape(-1, D), start.reshape(-1, D), change,
                                            self.regression_weight)
        if h.dropout_reg > 0:
            total = total + h.dropout_reg * self.net.regularizer().to(total)
        self.log("train/loss", total, prog_bar=True)
        self.log("train/regression_weight", self.regression_weight)
        return total

    def on_train_epoch_end(self) -> None:
        if self._epoch_acc:
            self.acc_history.copy_(torch.roll(self.acc_history, 1))
            self.acc_history[0] = sum(self._epoch_acc) / len(self._epoch_acc)
            self.acc_epochs += 1
            self._epoch_acc.clear()

    # ---------------------------------------------------------------- generation
    @torch.no_grad()
    def embeddings(self, prompts: list[str], num_frames: int, seed: int = 0) -> torch.Tensor:
        """prompts -> (B, num_frames, D) frame embeddings; frame 0 is the prior's embedding (seed + i per prompt)."""
        if self.backbone is None:
            raise RuntimeError("the splitter has no backbone attached (train.py and evaluate.py attach the one in "
                               "the run's config)")
        if num_frames < 2:
            raise ValueError(f"num_frames={num_frames} is invalid; allowed: >= 2")
        h, bb = self.hparams, self.backbone
        with torch.autocast(self.device.type, enabled=False):  # the frozen backbone at its own precision
            hidden, pooled = bb.encode_text(list(prompts))
            start = bb.prior(list(prompts), [seed + i for i in range(len(prompts))])
        hidden, pooled, start = hidden.to(self.device), pooled.to(self.device), start.to(self.device)
        B, F_ = len(prompts), num_frames
        inc = h.increment if h.increment is not None else 1.0 / num_frames
        if h.mode == "step":  # every frame from the original start
            rise = inc * torch.arange(1, F_, device=self.device).float().expand(B, -1)
            pred = self._predict(hidden, start[:, None].expand(-1, F_ - 1, -1), rise)  # (B,F-1,D)
            return torch.cat([start[:, None], pred], dim=1)
        # regression: each frame from the previous prediction, text rotated towards it
        c = F.cosine_similarity(start, pooled, dim=-1)
        rise = torch.full((B,), inc, device=self.device)
        out, prev, anchor = [start], start, start
        shared = self.net.share_text(hidden)
        text = shared.text
        for _ in range(1, F_):
            if h.fix_text_emb:  # the original text, turned by R(start -> previous frame); its maps computed once
                turn = self._text_turn(start, prev, c)
                nxt = self._predict(shared, prev, rise, rotation=turn)
            else:  # the text turned step by step, each turn from the previous anchor
                text = soft_rotate(text, anchor, prev, c, h.rotation_power)
                anchor = prev
                nxt = self._predict(text, prev, rise, text_normalized=True)
            prev = nxt
            out.append(prev)
        return torch.stack(out, dim=1)

    @torch.no_grad()
    def generate(self, prompts: list[str], num_frames: int, seed: int = 0) -> torch.Tensor:
        """prompts -> videos (B,T,3,H,W) in [0,1], rendered by the backbone (one decoder seed per clip)."""
        embeds = self.embeddings(prompts, num_frames, seed)
        with torch.autocast(self.device.type, enabled=False):
            videos = [self.backbone.decode_video(e[None].float(), seed + i) for i, e in enumerate(embeds)]
        return torch.cat(videos).to(self.device)
