"""The thin LightningModule of the Splitter family: training steps on cached embeddings, and generation
through the frozen backbone. Every rule below defaults to the reference trainer's (shared/reference notes,
`Rotation_T2I_to_T2V/trainers/trainerspliters.py`), without its listed bugs; this project's alternatives are
named switches.

A batch holds B clips from the embedding cache: frames (B,T,D) padded, lengths (B,), text hidden states
(B,L,D), pooled text embedding (B,D), the prior's embedding (B,D). Per clip up to `max_batch` frames are
sampled and the clip is walked forwards and, with `reverse`, backwards (`models/splitter/clip_pairs.py`). Each
way has an anchor, the embedding standing for its first frame: the prior (train_start=prior) or the clip's
first frame (first_frame); the backward way starts from the same anchor (reverse_start=prior, the reference) or
from anchor + img_last - img_0 (last_frame). Targets are always start + (img_t - img_s). Per way, with its first
frame w_0:
- base: from the anchor u to every sampled frame t, rise = +-d_t / n;
- rotation, for the pairs (s, t): start' = soft_rotate(u, R(img_w0 -> img_s), c1) and the text turned by
  R(u -> start') with blend c2, then predict t from start'. blend=reference: c1 = cos(img_w0, u),
  c2 = cos(u, pooled text); blend=frames: c1 = cos(img_w0, img_s), c2 = cos(u, start');
- regression, for the pairs (s, t): start = the model's own detached base prediction for s, the text turned by
  R(u -> start) with c2 as above; its loss weight is the mean accuracy of the last `regression_window` epochs
  (0.5 before there is one).
Soft rotation: X' = (1 - c^p) X + c^p R X, c clipped to [0, 1], p = rotation_power. The text is turned as raw
hidden states (rotate_text=raw, the reference) or after the network's LayerNorm (normed). Each step type is one
network call over all clips and pairs; a clip's loss is the mean over its predictions of each step type, base +
rotation + weight * regression, and the batch's loss the mean over clips (the reference took one optimizer step
per clip). Accuracy of the base predictions, per epoch: relative (the write-up's) = mean cos(pred, img_t) / mean
cos(u, img_w0), how close the predictions come to their frames against how close the anchor is to the way's
first frame; plain = mean cos(pred, target).
Generation: step mode predicts every frame from the prior, rise = increment * i; regression mode predicts frame i
from frame i-1 with the text turned by R(anchor -> frame i-1), blend c2 (the same function as training). Frame 0
is predicted (first_frame=predict, the reference: rise 0 in step mode, one increment in regression mode) or is
the prior itself (first_frame=prior).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from t2vlab.lit.family import FamilyModule
from t2vlab.models.splitter.clip_pairs import PAIRS, compact, pair_mask, pair_table, sample_frames, way_order
from t2vlab.models.splitter.rotation import soft_rotate
from t2vlab.models.splitter.text_tokens import SPACES

MODES = ("step", "regression")
BLENDS = ("reference", "frames")
ACCURACIES = ("relative", "plain")
REVERSE_STARTS = ("prior", "last_frame")
FIRST_FRAMES = ("predict", "prior")
TRAIN_STARTS = ("prior", "first_frame")


def masked_clip_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,J) values and mask -> (B,) mean over each clip's True entries (0 for a clip with none)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum(1) / mask.sum(1).clamp_min(1)


class SplitterModule(FamilyModule):
    family = "splitter"
    needs_backbone = True  # the train/evaluate tasks attach backbone=... and serve cached embeddings

    def __init__(self, net: torch.nn.Module, loss, vocab: list[str] | None = None, lr: float = 1e-3,
                 weight_decay: float = 0.01, warmup_steps: int = 100, max_batch: int = 15,
                 base_step: bool = True, reverse: bool = True, rotation_step: bool = True,
                 regression_step: bool = True, regression_window: int = 3, rotation_power: float = 1.0,
                 dropout_reg: float = 1e-5, dropout_weight_reg: float = 1e-6, mode: str = "step",
                 increment: float | None = None, fix_text_emb: bool = True, train_start: str = "prior",
                 blend: str = "reference", rotate_text: str = "raw", pairs: str = "all",
                 accuracy: str = "relative", reverse_start: str = "prior", first_frame: str = "predict") -> None:
        super().__init__()
        checks = [("lr", lr > 0, "> 0"), ("weight_decay", weight_decay >= 0, ">= 0"),
                  ("warmup_steps", warmup_steps >= 0, ">= 0"), ("max_batch", max_batch >= 2, ">= 2"),
                  ("regression_window", regression_window >= 1, ">= 1"),
                  ("rotation_power", rotation_power > 0, "> 0"), ("dropout_reg", dropout_reg >= 0, ">= 0"),
                  ("dropout_weight_reg", dropout_weight_reg >= 0, ">= 0"),
                  ("train_start", train_start in TRAIN_STARTS, ", ".join(TRAIN_STARTS)),
                  ("pairs", pairs in PAIRS, ", ".join(PAIRS)),
                  ("accuracy", accuracy in ACCURACIES, ", ".join(ACCURACIES)),
                  ("reverse_start", reverse_start in REVERSE_STARTS, ", ".join(REVERSE_STARTS)),
                  ("base_step", base_step or rotation_step, "at least one of base_step, rotation_step")]
        self.check_arguments(checks, locals())
        if regression_step and not base_step:
            raise ValueError("model.regression_step=true needs model.base_step=true: it starts from the base "
                             "step's predictions")
        self.check_loss(loss, "loss=splitter_base, loss=splitter_transform")
        self.save_hyperparameters(ignore=["net", "loss"])
        self.check_generation("model")
        self.net, self.loss = net, loss
        self.backbone = None  # frozen, outside the state dict; attached by the train/evaluate tasks
        self.register_buffer("acc_history", torch.zeros(regression_window))
        self.register_buffer("acc_epochs", torch.zeros((), dtype=torch.long))
        self._epoch_acc: list[tuple[float, float]] = []  # per step: the accuracy's numerator and denominator

    def check_generation(self, name: str = "generation") -> None:
        """Settings that steer generation, checked at build time and again when changed after training
        (evaluate.py generation.<key>=..., or train.py evaluation.variants.<variant>.<key>=...); `name` is where
        they were set, for the error."""
        h = self.hparams
        checks = [("mode", h.mode in MODES, ", ".join(MODES)),
                  ("increment", h.increment is None or 0 < abs(h.increment) < 1, "null (1/num_frames) or 0 < |x| < 1"),
                  ("blend", h.blend in BLENDS, ", ".join(BLENDS)),
                  ("rotate_text", h.rotate_text in SPACES, ", ".join(SPACES)),
                  ("first_frame", h.first_frame in FIRST_FRAMES, ", ".join(FIRST_FRAMES))]
        for key, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{name}.{key}={h[key]} is invalid; allowed: {allowed}")

    def attach_backbone(self, backbone) -> None:
        if backbone.dim != self.net.dim or backbone.text_len != self.net.text_len:
            raise ValueError(f"backbone {backbone.name} has D={backbone.dim}, L={backbone.text_len}; the network was "
                             f"built for D={self.net.dim}, L={self.net.text_len}")
        self.backbone = backbone

    # ---------------------------------------------------------------- the rules training and generation share
    def start_blend(self, way_first: torch.Tensor, anchor: torch.Tensor, s_img: torch.Tensor) -> torch.Tensor:
        """c1, the blend of the rotation step's start: cos(img_w0, anchor) (reference) or cos(img_w0, img_s)."""
        other = anchor if self.hparams.blend == "reference" else s_img
        return F.cosine_similarity(way_first, other, dim=-1)

    def text_blend(self, anchor: torch.Tensor, start: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """c2, the blend of the text's turn R(anchor -> start): cos(anchor, pooled text) (reference) or
        cos(anchor, start)."""
        other = pooled if self.hparams.blend == "reference" else start
        return F.cosine_similarity(anchor, other, dim=-1)

    def text_turn(self, anchor: torch.Tensor, start: torch.Tensor, pooled: torch.Tensor) -> tuple:
        """The soft rotation anchor -> start the text undergoes: (v1, v2, c2 clipped to [0,1] ** rotation_power)."""
        c = self.text_blend(anchor, start, pooled)
        return anchor, start, c.clamp(0, 1) ** self.hparams.rotation_power

    def _predict(self, hidden, start: torch.Tensor, rise: torch.Tensor, rotation=None) -> torch.Tensor:
        """hidden (B,L,D) or net.share_text(hidden) with start (B,D), rise (B,); or J predictions per text: start
        (B,J,D), rise (B,J)."""
        return self.net(hidden, start, rise, rotation=rotation, rotation_space=self.hparams.rotate_text).float()

    # ---------------------------------------------------------------- training
    def configure_optimizers(self):
        h = self.hparams
        return self.per_step(*self.adamw_warmup_cosine(self.parameters(), h.lr, h.warmup_steps, 0.05,
                                                       self.planned_steps(), weight_decay=h.weight_decay))

    @property
    def regression_weight(self) -> float:
        """Mean accuracy of the last `regression_window` epochs; 0.5 before the first epoch ends."""
        seen = int(min(self.acc_epochs.item(), len(self.acc_history)))
        return float(self.acc_history[:seen].mean().clamp(0, 1)) if seen else 0.5

    def sample_frames(self, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) clip lengths -> frame indices (B,K) and frames sampled per clip (B,) (clip_pairs.sample_frames)."""
        return sample_frames(lengths, self.hparams.max_batch)

    def ways(self, img: torch.Tensor, idx: torch.Tensor, count: torch.Tensor, prior: torch.Tensor) -> list[dict]:
        """The clip walked forwards (and backwards with `reverse`): per way its frames' embeddings img (B,K,D), their
        offsets from the way's first frame d (B,K), the sign of its rises and its anchor (B,D)."""
        h = self.hparams
        B, K, D = img.shape
        anchor = prior if h.train_start == "prior" else img[:, 0]
        last = img.gather(1, (count - 1)[:, None, None].expand(-1, 1, D))[:, 0]
        out = []
        for way in ("forward", "back") if h.reverse else ("forward",):
            order = way_order(count, K, way)
            w_idx = idx.gather(1, order)
            w_anchor = anchor if way == "forward" or h.reverse_start == "prior" else anchor + last - img[:, 0]
            out.append({"img": img.gather(1, order[..., None].expand(-1, -1, D)),
                        "d": (w_idx - w_idx[:, :1]).abs().float(), "sign": 1.0 if way == "forward" else -1.0,
                        "anchor": w_anchor})
        return out

    def _score(self, name: str, pred, start, change, mask, weight: float = 1.0) -> torch.Tensor:
        """The step type's loss: per clip the mean over its predictions, summed over clips / B (B,J inputs)."""
        B, J, D = pred.shape
        terms = self.loss(pred.reshape(-1, D), start.reshape(-1, D), change.reshape(-1, D))
        per_clip = masked_clip_mean(terms["loss"].view(B, J), mask)
        self.log(f"train/loss_{name}", per_clip.sum() / max(1, int(mask.any(1).sum())))
        return weight * per_clip.mean()

    def accuracy(self, pred: torch.Tensor, target: torch.Tensor, true_img: torch.Tensor, anchor: torch.Tensor,
                 way_first: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The accuracy of a batch's base predictions (B,J) as (numerator, denominator), each clip weighted alike.
        relative: mean cos(pred, img_t) over mean cos(anchor, img_w0); plain: mean cos(pred, target) over 1. An
        epoch's accuracy is the ratio of the sums over its steps: the reference steps one clip at a time and
        averages per-clip values, but a per-clip (or per-batch) ratio divides by ~0 whenever clips start nearly
        orthogonal to the prior (on circles cos(prior, img_0) ranges from -0.8 to 1, mean 0.26)."""
        if self.hparams.accuracy == "plain":
            return masked_clip_mean(F.cosine_similarity(pred, target, dim=-1), mask).mean(), torch.ones(())
        near = masked_clip_mean(F.cosine_similarity(pred, true_img, dim=-1), mask).mean()
        base = masked_clip_mean(F.cosine_similarity(anchor, way_first, dim=-1), mask).mean()
        return near, base

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        h = self.hparams
        frames, lengths = batch["frames"].float(), batch["lengths"]
        hidden, prior, pooled = batch["hidden"].float(), batch["prior"].float(), batch["pooled"].float()
        text = self.net.share_text(hidden)  # its maps computed once for every step type below
        D = frames.shape[-1]
        idx, count = self.sample_frames(lengths)  # (B,K), (B,)
        img = frames.gather(1, idx[..., None].expand(-1, -1, D))  # (B,K,D)
        ways = self.ways(img, idx, count, prior)
        total = torch.zeros((), device=self.device)
        base_preds = None
        if h.base_step:
            loss, base_preds = self._base_step(text, ways, count, lengths)
            total = total + loss
        steps = [("rotation", True)] if h.rotation_step else []
        steps += [("regression", False)] if h.regression_step else []
        for name, capped in steps:
            total = total + self._pair_step(name, capped, text, ways, count, lengths, pooled, base_preds)
        if h.dropout_reg > 0 or h.dropout_weight_reg > 0:
            total = total + self.net.regularizer(h.dropout_weight_reg, h.dropout_reg).to(total)
        self.log("train/loss", total, prog_bar=True)
        self.log("train/regression_weight", self.regression_weight)
        return total

    def _base_step(self, text, ways: list[dict], count: torch.Tensor, lengths: torch.Tensor):
        """Every sampled frame from its way's anchor, one call for all ways -> (loss, base predictions per way
        (B,K-1,D) for positions 1..K-1, detached)."""
        B, K, _ = ways[0]["img"].shape
        valid = torch.arange(K, device=count.device)[None] < count[:, None]  # (B,K)
        n = lengths.float()[:, None]
        parts = {"start": [], "change": [], "rise": [], "mask": [], "img": [], "first": []}
        for w in ways:
            parts["start"].append(w["anchor"][:, None].expand(-1, K - 1, -1))
            parts["change"].append(w["img"][:, 1:] - w["img"][:, :1])
            parts["rise"].append(w["sign"] * w["d"][:, 1:] / n)
            parts["mask"].append(valid[:, 1:])
            parts["img"].append(w["img"][:, 1:])
            parts["first"].append(w["img"][:, :1].expand(-1, K - 1, -1))
        start, change, rise, mask, true_img, first = (torch.cat(parts[k], 1) for k in parts)
        pred = self._predict(text, start, rise)  # (B,J,D): the clip's text is encoded once
        loss = self._score("base", pred, start, change, mask)
        near, base = self.accuracy(pred, start + change, true_img, start, first, mask)
        self._epoch_acc.append((float(near.detach()), float(base)))
        self.log("train/acc_base", self.epoch_accuracy(), prog_bar=True)  # the epoch's so far
        return loss, pred.detach().split(K - 1, dim=1)

    def _pair_step(self, name: str, capped: bool, text, ways: list[dict], count: torch.Tensor,
                   lengths: torch.Tensor, pooled: torch.Tensor, base_preds) -> torch.Tensor:
        """The rotation or regression step over the pairs (s, t) of every way, one call -> its weighted loss."""
        h = self.hparams
        B, K, D = ways[0]["img"].shape
        a, b = pair_table(K, h.pairs, device=count.device)
        keep, kept = compact(pair_mask(count, a, b, h.pairs, h.max_batch, capped))  # (B,P)
        if keep.shape[1] == 0:
            return torch.zeros((), device=count.device)
        pa, pb = a[keep], b[keep]  # (B,P) way positions of s and t
        e = (lengths - 1).clamp_min(1).float()[:, None]
        parts = {"start": [], "change": [], "rise": [], "turn": []}
        for wi, w in enumerate(ways):
            s_img, t_img = (w["img"].gather(1, pos[..., None].expand(-1, -1, D)) for pos in (pa, pb))
            u = w["anchor"][:, None].expand_as(s_img)
            if name == "rotation":
                first = w["img"][:, :1].expand_as(s_img)
                c1 = self.start_blend(first, u, s_img)
                start = soft_rotate(u.reshape(-1, D), first.reshape(-1, D), s_img.reshape(-1, D), c1.reshape(-1),
                                    h.rotation_power).view_as(s_img)
            else:  # the model's own prediction for s
                start = base_preds[wi].gather(1, (pa - 1)[..., None].expand(-1, -1, D))
            parts["start"].append(start)
            parts["change"].append(t_img - s_img)
            parts["rise"].append(w["sign"] * (w["d"].gather(1, pb) - w["d"].gather(1, pa)) / e)
            parts["turn"].append(self.text_turn(u, start, pooled[:, None].expand_as(start)))
        start, change, rise = (torch.cat(parts[k], 1) for k in ("start", "change", "rise"))
        turn = tuple(torch.cat([t[i] for t in parts["turn"]], 1) for i in range(3))
        pred = self._predict(text, start, rise, rotation=turn)
        weight = self.regression_weight if name == "regression" else 1.0
        return self._score(name, pred, start, change, kept.repeat(1, len(ways)), weight)

    def epoch_accuracy(self) -> float:
        """The accuracy of this epoch's steps so far: sum of numerators / sum of denominators (floored at 1e-3)."""
        return sum(n for n, _ in self._epoch_acc) / max(sum(d for _, d in self._epoch_acc), 1e-3)

    def on_train_epoch_end(self) -> None:
        if self._epoch_acc:
            self.acc_history.copy_(torch.roll(self.acc_history, 1))
            self.acc_history[0] = self.epoch_accuracy()
            self.acc_epochs += 1
            self._epoch_acc.clear()

    # ---------------------------------------------------------------- generation
    @torch.no_grad()
    def embeddings(self, prompts: list[str], num_frames: int, seed: int = 0) -> torch.Tensor:
        """prompts -> (B, num_frames, D) frame embeddings, from the prior's embedding (seed + i per prompt)."""
        if self.backbone is None:
            raise RuntimeError("the splitter has no backbone attached (train.py and evaluate.py attach the one in "
                               "the run's config)")
        if num_frames < 2:
            raise ValueError(f"num_frames={num_frames} is invalid; allowed: >= 2")
        h, bb = self.hparams, self.backbone
        with torch.autocast(self.device.type, enabled=False):  # the frozen backbone at its own precision
            hidden, pooled = bb.encode_text(list(prompts))
            prior = bb.prior(list(prompts), [seed + i for i in range(len(prompts))])
        hidden, pooled, prior = hidden.to(self.device), pooled.to(self.device), prior.to(self.device)
        B, F_ = len(prompts), num_frames
        inc = h.increment if h.increment is not None else 1.0 / num_frames
        predict_first = h.first_frame == "predict"
        shared = self.net.share_text(hidden)
        if h.mode == "step":  # every frame from the prior
            steps = torch.arange(0 if predict_first else 1, F_, device=self.device).float()
            pred = self._predict(shared, prior[:, None].expand(-1, len(steps), -1), inc * steps.expand(B, -1))
            return pred if predict_first else torch.cat([prior[:, None], pred], dim=1)
        # regression: each frame from the previous one, the text turned towards it
        rise = torch.full((B,), inc, device=self.device)
        prev = self._predict(shared, prior, rise) if predict_first else prior
        out, anchor, text, text_pooled = [prev], prior, None, pooled
        for _ in range(1, F_):
            if h.fix_text_emb:  # the original text, turned by R(prior -> previous frame); its maps computed once
                nxt = self._predict(shared, prev, rise, rotation=self.text_turn(prior, prev, pooled))
            else:  # the text (and its pooled embedding) turned step by step, each turn from the previous anchor
                _, _, w = self.text_turn(anchor, prev, text_pooled)
                raw = h.rotate_text == "raw"
                source = text if text is not None else (hidden if raw else shared.text)
                text = soft_rotate(source, anchor, prev, w)
                text_pooled, anchor = soft_rotate(text_pooled, anchor, prev, w), prev
                nxt = self.net(text, prev, rise, text_normalized=not raw).float()
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
