"""One clip's Splitter training step as the reference trainer computes it (`trainerspliters.py`,
`step_points.py`), transcribed rule by rule, with the same switches as `lit/splitter.py` and without the
reference's listed bugs (R is applied as R x, not x R; cosines per sample; the regression step starts from
frame s, not s + 1; the blend c is clipped to [0, 1]).

It works the way the reference does: the pairs come from its point lists in Python, every step type is one
network call over that step type's predictions with the text hidden states copied (and rotated) per prediction,
and rotations are dense D x D matrices built and multiplied. Two users: the tests, which check that the batched
step (`SplitterModule.training_step`) computes the same loss, and `bench/splitter_throughput.py`, where it is
the per-clip baseline (one optimizer step per clip).
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F


def sample_labels(n: int, max_batch: int, rng: random.Random) -> list[int]:
    """The reference's frame sampling: all frames of a short clip; else the first, the last and max_batch - 2
    distinct random ones between, sorted."""
    if n <= max_batch:
        return list(range(n))
    return sorted([0, *rng.sample(range(1, n - 1), max_batch - 2), n - 1])


def way_pairs(points: list[int], end: int, rule: str) -> list[tuple[int, int, float]]:
    """(a, t, (p_t - p_a) / end) over a way's points (its frames' offsets, first frame dropped): the reference's
    __way_config for pairs="all" (every p_a < p_t, sorted by a then t), or consecutive points."""
    if rule == "consecutive":
        return [(i, i + 1, (points[i + 1] - points[i]) / end) for i in range(len(points) - 1)]
    pairs = []
    if len(points) > 1:
        for t in range(len(points)):
            for a in range(len(points)):
                delta = points[t] - points[a]
                if delta > 0:
                    pairs.append((a, t, delta / end))
    return sorted(pairs)


def dense_rotation(v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
    """R (N,D,D) = I + (n2 n1^T - n1 n2^T) sin a + (n1 n1^T + n2 n2^T)(cos a - 1), built as the reference builds
    it (its RotationVectors.get_rotation_matrix; a vector parallel to v1 gives the identity)."""
    v1, v2 = v1.float(), v2.float()
    n1 = v1 / v1.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    w = v2 - (n1 * v2).sum(-1, keepdim=True) * n1
    v2_norm = v2.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    planar = w.norm(dim=-1, keepdim=True) > 1e-6 * v2_norm
    n2 = torch.where(planar, w / w.norm(dim=-1, keepdim=True).clamp_min(1e-8), torch.zeros_like(w))
    cos = torch.where(planar, ((n1 * v2).sum(-1, keepdim=True) / v2_norm).clamp(-1, 1), torch.ones_like(v2_norm))
    sin = torch.where(planar, w.norm(dim=-1, keepdim=True) / v2_norm, torch.zeros_like(v2_norm))
    eye = torch.eye(v1.shape[-1], device=v1.device).expand(len(v1), -1, -1)
    outer = lambda a, b: a[:, :, None] * b[:, None, :]  # noqa: E731
    return eye + (outer(n2, n1) - outer(n1, n2)) * sin[..., None] + (outer(n1, n1) + outer(n2, n2)) * (cos[..., None]
                                                                                                        - 1)


def dense_soft_rotate(x: torch.Tensor, R: torch.Tensor, c: torch.Tensor, power: float) -> torch.Tensor:
    """(1 - c^p) X + c^p (R X) for rows X (N,D) or (N,L,D), R (N,D,D), c (N,) clipped to [0, 1]."""
    w = c.float().clamp(0, 1) ** power
    w = w.view(-1, *([1] * (x.ndim - 1)))
    rotated = torch.einsum("nij,n...j->n...i", R, x.float())  # R x for every row: R, not the reference's R^T
    return (1 - w) * x.float() + w * rotated


def clip_step(module, clip: dict, labels: list[int], regression_weight: float | None = None) -> dict:
    """One clip: frames (n,D), hidden (L,D), pooled (D,), prior (D,); labels its sampled frames -> the step's
    "loss" (base + rotation + weight * regression + the dropout regulariser), each step type's mean loss and the
    base accuracy, as the reference trainer computes them for this clip."""
    h, net, loss_fn = module.hparams, module.net, module.loss
    frames, hidden, pooled, prior = (clip[k].float() for k in ("frames", "hidden", "pooled", "prior"))
    n, K = len(frames), len(labels)
    e = labels[-1]  # the reference's e_point: the last frame's index
    img = frames[labels]  # (K,D)
    anchor = prior if h.train_start == "prior" else img[0]
    ways = [(img, [lab - labels[0] for lab in labels], 1.0, anchor)]
    if h.reverse:
        back_anchor = anchor if h.reverse_start == "prior" else anchor + img[-1] - img[0]
        ways.append((img.flip(0), [e - lab for lab in reversed(labels)], -1.0, back_anchor))
    weight = module.regression_weight if regression_weight is None else regression_weight
    space = h.rotate_text

    def predict(text_rows: torch.Tensor, starts: torch.Tensor, rises: torch.Tensor) -> torch.Tensor:
        """One network call, the text copied per prediction (N,L,D)."""
        if space == "raw":
            return net(text_rows, starts, rises).float()
        return net(text_rows, starts, rises, text_normalized=True).float()

    text = hidden if space == "raw" else net.normalize_text(hidden[None])[0]
    out = {"loss": torch.zeros((), device=hidden.device)}
    base_preds = []
    if h.base_step:
        starts, changes, rises, true, firsts, anchors = [], [], [], [], [], []
        for w_img, offsets, sign, u in ways:
            for k in range(1, K):
                starts.append(u)
                changes.append(w_img[k] - w_img[0])
                rises.append(sign * offsets[k] / n)
                true.append(w_img[k])
                firsts.append(w_img[0])
                anchors.append(u)
        starts, changes, true, firsts, anchors = map(torch.stack, (starts, changes, true, firsts, anchors))
        pred = predict(text[None].expand(len(starts), -1, -1), starts, torch.tensor(rises, device=starts.device))
        terms = loss_fn(pred, starts, changes)
        out["base"] = terms["loss"].mean()
        out["loss"] = out["loss"] + out["base"]
        if h.accuracy == "plain":
            out["acc"] = F.cosine_similarity(pred, starts + changes, dim=-1).mean()
        else:
            near = F.cosine_similarity(pred, true, dim=-1).mean()
            out["acc"] = near / F.cosine_similarity(anchors, firsts, dim=-1).mean().clamp_min(1e-3)
        base_preds = pred.detach().split(K - 1)

    steps = ([("rotation", True)] if h.rotation_step else []) + ([("regression", False)] if h.regression_step else [])
    for name, capped in steps:
        starts, changes, rises, anchors, pooled_rows = [], [], [], [], []
        for wi, (w_img, offsets, sign, u) in enumerate(ways):
            pairs = way_pairs(offsets[1:], e, h.pairs)
            if capped and h.pairs == "all" and len(pairs) > h.max_batch - 1:
                pairs = pairs[: K - 1]  # the reference's batch-size control
            for a, t, rise in pairs:  # points a, t are way positions a + 1, t + 1
                s_img, t_img = w_img[a + 1], w_img[t + 1]
                if name == "rotation":
                    R = dense_rotation(w_img[:1], s_img[None])
                    other = u if h.blend == "reference" else s_img
                    c1 = F.cosine_similarity(w_img[0], other, dim=0)[None]
                    start = dense_soft_rotate(u[None], R, c1, h.rotation_power)[0]
                else:
                    start = base_preds[wi][a]
                starts.append(start)
                changes.append(t_img - s_img)
                rises.append(sign * rise)
                anchors.append(u)
                pooled_rows.append(pooled)
        if not starts:
            continue
        starts, changes, anchors, pooled_rows = map(torch.stack, (starts, changes, anchors, pooled_rows))
        R = dense_rotation(anchors, starts)  # the text's turn: anchor -> start, one D x D matrix per prediction
        c2 = F.cosine_similarity(anchors, pooled_rows if h.blend == "reference" else starts, dim=-1)
        rows = dense_soft_rotate(text[None].expand(len(starts), -1, -1), R, c2, h.rotation_power)
        pred = predict(rows, starts, torch.tensor(rises, device=starts.device))
        out[name] = loss_fn(pred, starts, changes)["loss"].mean()
        out["loss"] = out["loss"] + (weight if name == "regression" else 1.0) * out[name]
    if h.dropout_reg > 0 or h.dropout_weight_reg > 0:
        out["loss"] = out["loss"] + net.regularizer(h.dropout_weight_reg, h.dropout_reg)
    return out
