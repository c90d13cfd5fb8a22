"""The Splitter's training and generation rules against direct, slow transcriptions of their formulas: the
reference trainer's per-clip step (dense rotation matrices, the text copied per prediction, Python pair lists),
the pair lists, frame sampling, accuracy, the transform loss against its dense matrices, concrete dropout's
regulariser and the generation modes."""

import math
import random

import pytest
import torch
import torch.nn.functional as F

from t2vlab.backbones.embedding_data import collate_embeddings
from t2vlab.lit.splitter import SplitterModule
from t2vlab.models.splitter.clip_pairs import compact, pair_mask, pair_table, sample_frames
from t2vlab.models.splitter.layers import ConcreteDropout
from t2vlab.models.splitter.losses import SplitterBaseLoss, SplitterTransformLoss, frobenius_term, generator_term
from t2vlab.models.splitter.nets import Splitter, SplitterDual, SplitterNext
from t2vlab.models.splitter.reference_step import clip_step, dense_rotation, dense_soft_rotate, sample_labels, way_pairs

D, L = 16, 6


def clips(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"frames": torch.randn(n, D, generator=g), "hidden": torch.randn(L, D, generator=g) * 2 + 0.3,
             "pooled": torch.randn(D, generator=g), "prior": torch.randn(D, generator=g), "text": "x", "id": str(i)}
            for i, n in enumerate(lengths)]


def module(net=None, loss=None, **hparams):
    torch.manual_seed(1)
    net = net or Splitter(D, L, dropout=0.0, widths=(8, 4))
    for p in net.head.parameters():  # a non-zero head, so the comparisons see the features
        p.data.normal_(0, 0.3)
    m = SplitterModule(net, loss or SplitterBaseLoss(), **hparams)
    m.logged = {}
    m.log = lambda name, value, **kw: m.logged.__setitem__(name, float(torch.as_tensor(value).detach()))
    return m


def fixed_sampling(m, cs, seed=0):
    """The reference's Python sampling per clip, handed to the batched step as its indices."""
    rng = random.Random(seed)
    labels = [sample_labels(len(c["frames"]), m.hparams.max_batch, rng) for c in cs]
    K = max(len(lab) for lab in labels)
    idx = torch.tensor([lab + [lab[-1]] * (K - len(lab)) for lab in labels])
    m.sample_frames = lambda lengths: (idx, torch.tensor([len(lab) for lab in labels]))
    return labels


SWITCHES = [{}, {"blend": "frames"}, {"rotate_text": "normed"}, {"pairs": "consecutive"},
            {"reverse_start": "last_frame"}, {"train_start": "first_frame"}, {"accuracy": "plain"},
            {"reverse": False}, {"max_batch": 5}, {"max_batch": 3}, {"rotation_step": False},
            {"regression_step": False}, {"rotation_power": 2.0}, {"max_batch": 6, "pairs": "consecutive"}]


@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "reference")
def test_the_batched_step_computes_the_reference_trainers_loss_clip_by_clip(switches):
    m = module(**switches)
    m.acc_history.fill_(0.8)  # a regression weight other than the first epoch's 0.5
    m.acc_epochs.fill_(1)
    cs = clips([10, 4, 7, 2, 12, 16])
    labels = fixed_sampling(m, cs)
    batched = m.training_step(collate_embeddings(cs), 0)
    per_clip = torch.stack([clip_step(m, c, lab)["loss"] for c, lab in zip(cs, labels, strict=True)]).mean()
    torch.testing.assert_close(batched, per_clip, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("net", [SplitterNext(D, L, heads=4, dropout=0.0, learnable_dropout=False),
                                 SplitterDual(D, L, heads=4, dropout=0.0, learnable_dropout=False),
                                 SplitterDual(D, L, heads=4, self_attention=True, dropout=0.0,
                                              learnable_dropout=False)])
@pytest.mark.parametrize("loss", [SplitterBaseLoss(), SplitterTransformLoss()])
def test_every_variant_and_loss_matches_the_reference_clip_step(net, loss):
    m = module(net, loss)
    cs = clips([9, 5, 12], seed=2)
    labels = fixed_sampling(m, cs, seed=3)
    batched = m.training_step(collate_embeddings(cs), 0)
    per_clip = torch.stack([clip_step(m, c, lab)["loss"] for c, lab in zip(cs, labels, strict=True)]).mean()
    torch.testing.assert_close(batched, per_clip, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("max_batch", [3, 4, 6, 15])
@pytest.mark.parametrize("rule", ["all", "consecutive"])
def test_pairs_are_the_reference_point_lists_with_its_batch_size_control(max_batch, rule):
    lengths = torch.tensor([2, 3, 4, 5, 6, 7, 8, 10, 16, 20])
    count = lengths.clamp(max=max_batch)
    K = int(count.max())
    a, b = pair_table(K, rule)
    for capped in (True, False):
        mask = pair_mask(count, a, b, rule, max_batch, capped)
        for i, k in enumerate(count.tolist()):
            points = list(range(1, k))  # offsets of the way's frames after its first (any increasing list)
            expected = way_pairs(points, k - 1, rule)
            if capped and rule == "all" and len(expected) > max_batch - 1:
                expected = expected[: k - 1]
            got = [(int(x) - 1, int(y) - 1) for x, y in zip(a[mask[i]], b[mask[i]], strict=True)]
            assert got == [(s, t) for s, t, _ in expected], (k, capped)


def test_compacting_keeps_the_chosen_entries_in_order():
    mask = torch.tensor([[True, False, True, True], [False, False, True, False], [False] * 4])
    order, kept = compact(mask)
    assert order.shape == (3, 3)
    assert order[0].tolist() == [0, 2, 3] and kept[0].all()
    assert order[1, 0] == 2 and kept[1].tolist() == [True, False, False] and not kept[2].any()


def test_frame_sampling_takes_whole_short_clips_and_first_last_and_distinct_frames_of_long_ones():
    lengths = torch.tensor([10, 4, 40, 2, 15, 16])
    for _ in range(20):
        idx, count = sample_frames(lengths, 15)
        assert idx.shape == (6, 15) and count.tolist() == [10, 4, 15, 2, 15, 15]
        for i, (n, k) in enumerate(zip(lengths.tolist(), count.tolist(), strict=True)):
            row = idx[i, :k].tolist()
            assert row[0] == 0 and row[-1] == n - 1 and row == sorted(set(row))
            if n <= 15:
                assert row == list(range(n))
            assert (idx[i, k:] == n - 1).all()  # padding repeats the last frame


def test_relative_and_plain_accuracy_are_their_formulas():
    g = torch.Generator().manual_seed(5)
    pred, target, true, anchor, first = (torch.randn(3, 4, D, generator=g) for _ in range(5))
    mask = torch.tensor([[True] * 4, [True, True, False, False], [True] * 4])
    cos = lambda x, y: F.cosine_similarity(x, y, dim=-1)  # noqa: E731
    per_clip = lambda v: torch.stack([v[i][mask[i]].mean() for i in range(3)])  # noqa: E731
    near, base = module().accuracy(pred, target, true, anchor, first, mask)
    torch.testing.assert_close(near, per_clip(cos(pred, true)).mean())
    torch.testing.assert_close(base, per_clip(cos(anchor, first)).mean())
    plain, one = module(accuracy="plain").accuracy(pred, target, true, anchor, first, mask)
    torch.testing.assert_close(plain, per_clip(cos(pred, target)).mean())
    assert one == 1


def test_an_epochs_relative_accuracy_is_the_ratio_of_its_sums():
    m = module()
    m._epoch_acc = [(0.2, 0.5), (0.3, -0.1), (0.1, 0.1)]  # a batch whose clips start opposite the prior
    assert m.epoch_accuracy() == pytest.approx(0.6 / 0.5)
    m.on_train_epoch_end()
    assert m.regression_weight == 1.0  # clipped to [0, 1]


def test_the_regression_weight_is_the_accuracy_of_the_last_epochs():
    m = module(regression_window=3)
    assert m.regression_weight == 0.5
    for acc in (0.2, 0.4, 0.9, 0.5):
        m._epoch_acc = [(acc, 1.0), (acc, 1.0)]
        m.on_train_epoch_end()
    assert m.regression_weight == pytest.approx((0.4 + 0.9 + 0.5) / 3)


def test_the_rotation_steps_blends_are_the_reference_formulas():
    """One rotation-step prediction by hand: start' = (1 - c1) u + c1 R(img_0 -> img_s) u, c1 = cos(img_0, u);
    text' = (1 - c2) X + c2 R(u -> start') X per raw token, c2 = cos(u, pooled text)."""
    g = torch.Generator().manual_seed(6)
    u, img0, s_img, pooled = (torch.randn(D, generator=g) for _ in range(4))
    pooled = pooled + 2 * u  # a blend well inside (0, 1)
    X = torch.randn(L, D, generator=g)
    m = module()
    c1 = m.start_blend(img0, u, s_img)
    assert c1 == pytest.approx(float(F.cosine_similarity(img0, u, dim=0)))
    rotate = lambda v1, v2, x: (dense_rotation(v1[None], v2[None])[0] @ x.T).T  # noqa: E731
    start = (1 - c1) * u + c1 * rotate(img0, s_img, u[None])[0]
    _, _, w = m.text_turn(u, start, pooled)
    assert w == pytest.approx(float(F.cosine_similarity(u, pooled, dim=0)))
    expected_text = (1 - w) * X + w * rotate(u, start, X)
    torch.testing.assert_close(dense_soft_rotate(X[None], dense_rotation(u[None], start[None]), w[None], 1.0)[0],
                               expected_text)
    frames = module(blend="frames")
    assert frames.start_blend(img0, u, s_img) == pytest.approx(float(F.cosine_similarity(img0, s_img, dim=0)))
    c2 = float(F.cosine_similarity(u, start, dim=0).clamp(0, 1))
    assert frames.text_turn(u, start, pooled)[2] == pytest.approx(c2)


@pytest.mark.parametrize("net", [Splitter(D, L), SplitterNext(D, L, heads=4), SplitterDual(D, L, heads=4),
                                 SplitterDual(D, L, heads=4, self_attention=True),
                                 Splitter(D, L, reduction="attention", heads=4)])
def test_turning_the_raw_text_inside_the_network_equals_feeding_the_turned_hidden_states(net):
    from t2vlab.models.splitter.rotation import soft_rotate

    net.eval()
    with torch.no_grad():
        for p in net.parameters():  # LayerNorm gains and biases too: the raw turn goes through them
            p.normal_(0, 0.3)
        g = torch.Generator().manual_seed(7)
        hidden = torch.randn(3, L, D, generator=g) * 2 + 0.5
        start, rise = torch.randn(3, 2, D, generator=g), torch.rand(3, 2, generator=g)
        v1, v2, w = torch.randn(3, 2, D, generator=g), torch.randn(3, 2, D, generator=g), torch.rand(3, 2, generator=g)
        inside = net(hidden, start, rise, rotation=(v1, v2, w), rotation_space="raw")
        fed = torch.stack([net(soft_rotate(hidden, v1[:, j], v2[:, j], w[:, j]), start[:, j], rise[:, j])
                           for j in range(2)], dim=1)
    torch.testing.assert_close(inside, fed, atol=1e-4, rtol=1e-4)


def test_the_transform_term_is_the_row_sums_of_the_dense_generator_parts():
    g = torch.Generator().manual_seed(8)
    v, u = torch.randn(6, D, generator=g), torch.randn(6, D, generator=g)
    v[1] = 0  # |v| < 1e-8: masked, as the reference does
    u[2] = 3 * v[2]  # parallel: a = 0
    rows = []
    for vi, ui in zip(v, u, strict=True):  # the reference's TransformationBasedRotationLoss, one pair at a time
        n1 = vi / (vi.norm() + 1e-8)
        n2 = ui - n1 * (n1 @ ui)
        n2 = n2 / (n2.norm() + 1e-8)
        c = torch.clamp((n1 * (ui / (ui.norm() + 1e-8))).sum(), -1, 1)
        a = torch.tensor(0.0) if c.abs() > 1 - 1e-8 else torch.acos(c)
        A = (torch.outer(n2, n1) - torch.outer(n1, n2)) * torch.sin(a)
        B = (torch.outer(n1, n1) + torch.outer(n2, n2)) * (torch.cos(a) - 1)
        one = torch.ones(D)
        loss = 0.7 * (A @ one).square().mean() + 0.3 * (B @ one).square().mean()
        rows.append(loss if vi.norm() > 1e-8 else torch.tensor(0.0))
    torch.testing.assert_close(generator_term(v, u, 0.7, 0.3), torch.stack(rows), atol=1e-6, rtol=1e-5)
    assert generator_term(v, u, 0.7, 0.3)[1] == 0 and generator_term(v, u, 0.7, 0.3)[2] == 0


def test_the_transform_term_is_not_a_function_of_the_cosine_alone():
    """Two pairs at the same angle, one plane along the all-ones direction and one across it: the generator term
    differs; the Frobenius term, a function of the cosine, does not."""
    e = torch.eye(D)
    angle = 0.7
    v_along, u_along = (e[0] + e[1]), math.cos(angle) * (e[0] + e[1]) + math.sin(angle) * (e[2] + e[3])
    v_across, u_across = (e[0] - e[1]), math.cos(angle) * (e[0] - e[1]) + math.sin(angle) * (e[2] - e[3])
    v, u = torch.stack([v_along, v_across]), torch.stack([u_along, u_across])
    torch.testing.assert_close(F.cosine_similarity(u[0], v[0], dim=0), F.cosine_similarity(u[1], v[1], dim=0))
    gen = generator_term(v, u, 0.7, 0.3)
    s, c = math.sin(angle), math.cos(angle)
    # (alpha sin^2 a + beta (1 - cos a)^2) |the all-ones vector's part in the plane|^2 / D: 2 + 2 along, 0 across
    assert gen[0].item() == pytest.approx((0.7 * s * s + 0.3 * (1 - c) ** 2) * 4 / D, rel=1e-5)
    assert gen[1] < 1e-6
    frob = frobenius_term(v, u, 0.7, 0.3)
    torch.testing.assert_close(frob[0], frob[1])
    assert frob[0].item() == pytest.approx(2 * 0.7 * (1 - c * c) + 2 * 0.3 * (1 - c) ** 2, rel=1e-5)
    assert frobenius_term(v, u, 0.5, 0.5)[0].item() == pytest.approx(4 * 0.5 * (1 - c), rel=1e-5)  # a cosine weight


def test_the_transform_loss_adds_its_term_to_the_base_loss():
    g = torch.Generator().manual_seed(9)
    start, change = torch.randn(4, D, generator=g), torch.randn(4, D, generator=g)
    exact = SplitterTransformLoss()(start + change, start, change)
    assert exact["loss"].shape == (4,) and torch.allclose(exact["loss"], torch.zeros(4), atol=1e-5)
    wrong = start + torch.randn(4, D, generator=g)
    t, b = SplitterTransformLoss()(wrong, start, change), SplitterBaseLoss()(wrong, start, change)
    torch.testing.assert_close(t["transform"], generator_term(change, wrong - start, 0.7, 0.3))
    torch.testing.assert_close(t["loss"], b["loss"] + 0.5 * t["transform"])
    torch.testing.assert_close(b["loss"], 0.5 * (wrong - start - change).square().mean(-1)
                               + 0.5 * (1 - F.cosine_similarity(wrong - start, change, dim=-1)))
    with pytest.raises(ValueError, match="loss.term=dense is invalid; allowed: generator, frobenius"):
        SplitterTransformLoss(term="dense")


def test_concrete_dropouts_regulariser_has_the_weight_and_entropy_terms():
    drop = ConcreteDropout(0.3)
    W = torch.randn(5, 7)
    p = 0.3
    expected = 1e-2 * W.square().sum() / (1 - p) + 1e-3 * 5 * (p * math.log(p) + (1 - p) * math.log(1 - p))
    assert drop.regularizer(W, 5, 1e-2, 1e-3).item() == pytest.approx(expected.item(), rel=1e-5)
    net = SplitterNext(D, L, heads=4)
    blocks = [m for m in net.modules() if hasattr(m, "drop") and isinstance(m.drop, ConcreteDropout)]
    assert len(blocks) == 4  # the improved block and the reduction's three
    total = sum(b.drop.regularizer(b.lin.weight, b.lin.out_features, 1e-6, 1e-5) for b in blocks)
    torch.testing.assert_close(net.regularizer(1e-6, 1e-5), total)


class _Backbone:
    """Text, pooled text and prior of fixed random tensors; decoding is not needed for embeddings()."""

    dim, text_len, name = D, L, "fixed"

    def __init__(self):
        g = torch.Generator().manual_seed(10)
        self.hidden, self.pooled, self.prior_ = (torch.randn(2, L, D, generator=g), torch.randn(2, D, generator=g),
                                                 torch.randn(2, D, generator=g))
        self.pooled = self.pooled + self.prior_  # blends inside (0, 1)

    def encode_text(self, prompts):
        return self.hidden[: len(prompts)], self.pooled[: len(prompts)]

    def prior(self, prompts, seeds):
        return self.prior_[: len(prompts)]


@pytest.mark.parametrize("first_frame", ["predict", "prior"])
def test_step_mode_predicts_every_frame_from_the_prior(first_frame):
    m = module(first_frame=first_frame, increment=0.1).eval()
    m.attach_backbone(bb := _Backbone())
    out = m.embeddings(["a", "b"], 4)
    steps = range(4) if first_frame == "predict" else range(1, 4)
    expected = [m.net(bb.hidden, bb.prior_, torch.full((2,), 0.1 * i)) for i in steps]
    if first_frame == "prior":
        expected = [bb.prior_, *expected]
    torch.testing.assert_close(out, torch.stack(expected, dim=1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fix_text_emb", [True, False])
@pytest.mark.parametrize("space", ["raw", "normed"])
def test_regression_mode_is_the_reference_pipeline(fix_text_emb, space):
    """The reference's predict_regress_vectors: frame 0 from the prior at one increment; then frame i from frame
    i-1, the text turned by R(anchor -> frame i-1) blended by c = cos(anchor, text embedding); without
    fix_text_emb the anchor, the text and the text embedding move on each frame."""
    m = module(mode="regression", fix_text_emb=fix_text_emb, rotate_text=space, increment=0.2).eval()
    m.attach_backbone(bb := _Backbone())
    out = m.embeddings(["a", "b"], 4)
    rise = torch.full((2,), 0.2)
    text = bb.hidden if space == "raw" else m.net.normalize_text(bb.hidden)
    call = lambda t, s: m.net(t, s, rise, text_normalized=space == "normed")  # noqa: E731
    frames = [call(text, bb.prior_)]
    anchor, pooled = bb.prior_, bb.pooled
    for _ in range(3):
        c = F.cosine_similarity(anchor, pooled, dim=-1)
        R = dense_rotation(anchor, frames[-1])
        turned = dense_soft_rotate(text, R, c, 1.0)
        if not fix_text_emb:
            pooled = dense_soft_rotate(pooled, R, c, 1.0)
            anchor, text = frames[-1], turned
        frames.append(call(turned, frames[-1]))
    torch.testing.assert_close(out, torch.stack(frames, dim=1), atol=1e-4, rtol=1e-4)


def test_a_bad_rule_is_refused_with_its_allowed_values():
    for key, value, allowed in [("blend", "cosine", "reference, frames"), ("rotate_text", "both", "raw, normed"),
                                ("pairs", "some", "all, consecutive"), ("accuracy", "high", "relative, plain"),
                                ("reverse_start", "end", "prior, last_frame"),
                                ("first_frame", "zero", "predict, prior"),
                                ("max_batch", 1, ">= 2")]:
        with pytest.raises(ValueError, match=f"model.{key}={value} is invalid; allowed: {allowed}"):
            SplitterModule(Splitter(D, L), SplitterBaseLoss(), **{key: value})


def test_the_throughput_benchmark_times_both_loops_on_the_same_rules(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "splitter_throughput.py"
    spec = importlib.util.spec_from_file_location("splitter_throughput", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.main(["--dim", "16", "--text-len", "6", "--clips", "4", "--batch", "2", "--max-batch", "4", "15",
                          "--out", str(tmp_path / "bench.json")])
    assert json.loads((tmp_path / "bench.json").read_text()) == results
    rows = {(r["max_batch"], r["precision"]) for r in results["settings"]}
    assert (4, "fp32") in rows and (15, "fp32") in rows
    for row in results["settings"]:
        assert row["ours_clips_per_s"] > 0 and row["per_clip_loop_clips_per_s"] > 0
        assert len(row["speedup_per_round"]) == 2
        for loop in ("ours_utilisation", "per_clip_loop_utilisation"):  # FLOPs counted, MFU against measured peaks
            use = row[loop]
            assert use["flops_per_step"] > 0 and 0 < use["mfu_bf16"] and 0 < use["mfu_fp32"]
    # a clip of 16-40 frames at max_batch 4: 3 base + 3 rotation + 3 regression predictions each way
    assert next(r for r in results["settings"] if r["max_batch"] == 4)["predictions_per_clip"] == 18
    assert bench.predictions(bench.build("splitter", 15, D=16, L=6), 10) == 2 * (9 + 9 + 36)
