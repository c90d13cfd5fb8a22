"""The Splitter family: networks, losses, training steps, generation, and fast_dev_run of every variant x
loss on circles_unclip and on tiny random Kandinsky 2.2 components."""

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import compose_cfg, load_script

from t2vlab.models.splitter.layers import ConcreteDropout, RotaryEmbedding
from t2vlab.models.splitter.nets import Splitter, SplitterDual, SplitterNext
from t2vlab.tasks.common import build_data_and_backbone, build_model
from t2vlab.tasks.preflight import BadInput

VARIANTS = ["splitter", "splitter_next", "splitter_dual", "splitter_dual_csa"]
LOSSES = ["splitter_base", "splitter_transform"]

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("net", [Splitter(16, 6), SplitterNext(16, 6, heads=4), SplitterDual(16, 6, heads=4),
                                 SplitterDual(16, 6, heads=4, self_attention=True),
                                 Splitter(16, 6, reduction="attention", heads=4)])
def test_every_network_starts_from_no_change_and_learns_one(net):
    hidden, start, rise = torch.randn(8, 6, 16), torch.randn(8, 16), torch.rand(8) * 2 - 1
    torch.testing.assert_close(net(hidden, start, rise), start)  # zero-initialised head: nothing moves yet
    target = start + rise[:, None] * torch.linspace(-1, 1, 16)  # the change grows with the step
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = (net(hidden, start, rise) - target).square().mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


@pytest.mark.parametrize("net", [Splitter(16, 6), SplitterNext(16, 6, heads=4), SplitterDual(16, 6, heads=4),
                                 SplitterDual(16, 6, heads=4, self_attention=True)])
def test_predictions_sharing_a_text_equal_separate_calls(net):
    net.eval()
    with torch.no_grad():
        for p in net.head.parameters():  # a non-zero head, so the comparison sees the features
            p.normal_()
        hidden, start, rise = torch.randn(3, 6, 16), torch.randn(3, 5, 16), torch.rand(3, 5) * 2 - 1
        shared = net(hidden, start, rise)
        one_by_one = torch.stack([net(hidden, start[:, j], rise[:, j]) for j in range(5)], dim=1)
    torch.testing.assert_close(shared, one_by_one, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("net", [Splitter(16, 6), SplitterNext(16, 6, heads=4), SplitterDual(16, 6, heads=4),
                                 SplitterDual(16, 6, heads=4, self_attention=True)])
def test_a_rotation_inside_the_network_equals_feeding_the_rotated_text(net):
    from t2vlab.models.splitter.rotation import soft_rotate

    net.eval()
    with torch.no_grad():
        for p in net.head.parameters():
            p.normal_()
        hidden, start, rise = torch.randn(3, 6, 16), torch.randn(3, 2, 16), torch.rand(3, 2)
        v1, v2, w = torch.randn(3, 2, 16), torch.randn(3, 2, 16), torch.rand(3, 2)
        inside = net(hidden, start, rise, rotation=(v1, v2, w), rotation_space="normed")
        text = net.normalize_text(hidden)
        fed = torch.stack([net(soft_rotate(text, v1[:, j], v2[:, j], w[:, j]), start[:, j], rise[:, j],
                               text_normalized=True) for j in range(2)], dim=1)
    torch.testing.assert_close(inside, fed, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("rotated", [False, True])
def test_reducing_text_and_tokens_in_parts_equals_reducing_the_stacked_tokens(rotated):
    from t2vlab.models.splitter.layers import TokenReducer
    from t2vlab.models.splitter.text_tokens import RotatedText, SharedText

    g = torch.Generator().manual_seed(3)
    reducer = TokenReducer(6 + 2, 16, widths=(5, 3), learnable_dropout=True).eval()
    text = SharedText(torch.randn(2, 6, 16, generator=g))
    if rotated:
        text = RotatedText(text, torch.randn(2, 4, 16, generator=g), torch.randn(2, 4, 16, generator=g),
                           torch.rand(2, 4, generator=g))
    start, step = torch.randn(2, 4, 16, generator=g), torch.randn(2, 4, 16, generator=g)
    stacked = torch.cat([text.tokens(4), start[:, :, None], step[:, :, None]], dim=2)
    torch.testing.assert_close(reducer.reduce_parts(text, [start, step]), reducer(stacked), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dim,heads", [(16, 4), (15, 5)])  # rotary keys (even head width) and none (odd)
def test_cross_attention_to_a_rotated_text_equals_attending_to_each_rotated_copy(dim, heads):
    from t2vlab.models.splitter.layers import CrossAttention
    from t2vlab.models.splitter.text_tokens import RotatedText, SharedText

    g = torch.Generator().manual_seed(4)
    attn = CrossAttention(dim, heads)
    text = SharedText(torch.randn(2, 6, dim, generator=g))
    rotated = RotatedText(text, torch.randn(2, 3, dim, generator=g), torch.randn(2, 3, dim, generator=g),
                          torch.rand(2, 3, generator=g))
    queries = torch.randn(2, 3, 2, dim, generator=g)
    copies = rotated.tokens()
    expected = torch.stack([attn(queries[:, j : j + 1], SharedText(copies[:, j]))[:, 0] for j in range(3)], dim=1)
    torch.testing.assert_close(attn(queries, rotated), expected, atol=1e-5, rtol=1e-4)


def test_a_shared_text_is_projected_once_for_all_step_types_and_keeps_the_gradient():
    net = SplitterDual(16, 6, heads=4)
    for p in net.head.parameters():
        p.data.normal_()
    net.eval()
    hidden, start, rise = torch.randn(3, 6, 16), torch.randn(3, 5, 16), torch.rand(3, 5)
    v1, v2, w = torch.randn(3, 5, 16), torch.randn(3, 5, 16), torch.rand(3, 5)
    text = net.share_text(hidden)
    shared = net(text, start, rise).sum() + net(text, start, rise, rotation=(v1, v2, w)).sum()
    # keys and values of the two cross-attentions, the reducer's text part, the raw text's per-token statistics
    assert len(text._memo) == 6
    grads_shared = torch.autograd.grad(shared, list(net.parameters()), allow_unused=True)
    separate = net(hidden, start, rise).sum() + net(hidden, start, rise, rotation=(v1, v2, w)).sum()
    grads_separate = torch.autograd.grad(separate, list(net.parameters()), allow_unused=True)
    torch.testing.assert_close(shared, separate)
    for a, b in zip(grads_shared, grads_separate, strict=True):
        assert (a is None) == (b is None)
        if a is not None:  # the same sums in another order: float32 rounding relative to the largest entry
            torch.testing.assert_close(a, b, atol=1e-5 * float(b.abs().max()), rtol=1e-4)


def test_rotary_embedding_makes_dot_products_depend_on_relative_position():
    rope = RotaryEmbedding(8)
    q = torch.randn(1, 1, 8).expand(1, 6, 8)
    k = torch.randn(1, 1, 8).expand(1, 6, 8)
    rq, rk = rope(q), rope(k)
    dots = torch.einsum("bid,bjd->ij", rq, rk)
    torch.testing.assert_close(dots[0, 2], dots[3, 5])  # same offset, same score
    torch.testing.assert_close(rope(q).norm(dim=-1), q.norm(dim=-1))  # a rotation keeps lengths


def test_learnable_dropout_rate_gets_a_gradient():
    drop = ConcreteDropout(0.3).train()
    x = torch.randn(64, 32)
    (drop(x).square().mean() + drop.regularizer(torch.randn(32, 8), 32, 1e-6, 1e-5)).backward()
    assert drop.logit.grad is not None and drop.logit.grad.abs() > 0
    torch.testing.assert_close(drop.eval()(x), x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_learnable_dropout_gradients_equal_autograd_through_the_same_mask(dtype):
    torch.manual_seed(0)
    drop = ConcreteDropout(0.3, temperature=0.1).train().to(dtype)
    x = torch.randn(16, 40, dtype=dtype, requires_grad=True)
    grad = torch.randn(16, 40, dtype=dtype)
    state = torch.get_rng_state()
    (drop(x) * grad).sum().backward()
    fused = x.grad.clone(), drop.logit.grad.clone()
    torch.set_rng_state(state)  # the same uniform draws, through autograd's own ops
    x.grad, drop.logit.grad = None, None
    noise = torch.rand(x.shape).logit_(eps=1e-6)
    keep = torch.sigmoid(-(noise + drop.logit.float()) / 0.1)
    (x.float() * keep / (1 - drop.p.float()) * grad.float()).sum().backward()
    if dtype == torch.float64:
        torch.testing.assert_close(fused[0], x.grad.to(dtype), atol=1e-6, rtol=1e-6)
        # the noise is float32 in both, and the rate's gradient a float32 sum over 640 terms in another order: up to
        # 1.2e-4 apart over 300 seeds
        torch.testing.assert_close(fused[1], drop.logit.grad.to(dtype), atol=1e-6, rtol=1e-3)
    else:  # bf16 rounds every product: the rate's gradient (a sum over all elements) carries a few % of noise,
        # less than autograd's own bf16 chain of the old implementation (mean 5%, up to 24% over 20 seeds)
        torch.testing.assert_close(fused[0].float(), x.grad.float(), atol=2e-2, rtol=2e-2)
        assert abs(float(fused[1]) - float(drop.logit.grad)) < 0.15 * abs(float(drop.logit.grad))


def test_a_shared_text_under_autocast_projects_like_the_layer_itself():
    net = SplitterDual(dim=16, text_len=5, heads=2)
    hidden = torch.randn(3, 5, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        shared = net.share_text(hidden)
        k = shared.linear(net.cross_step.k)
        torch.testing.assert_close(k, net.cross_step.k(net.text_norm(hidden)))
        assert k.dtype == torch.bfloat16 and shared.compute_input() is shared.compute_input()  # cast once


def _module(overrides, tmp_path):
    cfg = compose_cfg("train", ["debug=fast", "logger=none", "print_config=false", *overrides], tmp_path / "run")
    datamodule, backbone = build_data_and_backbone(cfg)
    datamodule.progress = False
    return cfg, datamodule, build_model(cfg, datamodule.vocab, backbone)


@pytest.fixture(scope="module")
def shared_data(tmp_path_factory) -> Path:
    """One data folder for the fast-dev-run tests: the clips and their backbone embeddings are computed by the
    first test of each backbone and read from the cache by the rest."""
    return tmp_path_factory.mktemp("data")


def _fast_dev_run(overrides, tmp_path, data_dir: Path):
    cfg, datamodule, model = _module([*overrides, f"paths.data_dir={data_dir}"], tmp_path)
    trainer = pl.Trainer(fast_dev_run=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=datamodule)
    model.eval()
    return model


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("loss", LOSSES)
def test_fast_dev_run_on_circles_unclip(variant, loss, circles_unclip_stack, tmp_path, shared_data):
    model = _fast_dev_run([f"model={variant}", f"loss={loss}", "backbone=circles_unclip",
                           f"backbone.path={circles_unclip_stack}", "dataset.batch_size=4"], tmp_path, shared_data)
    for mode in ("step", "regression"):
        model.hparams.mode = mode
        video = model.generate(["circle moving left", "circle shrinking"], num_frames=5, seed=3)
        assert video.shape == (2, 5, 3, 64, 64) and 0 <= video.min() and video.max() <= 1
    torch.testing.assert_close(model.generate(["circle moving left"], 5, seed=3), video[:1])  # seeded


@pytest.fixture(scope="module")
def tiny_kandinsky(tmp_path_factory):
    from tiny_kandinsky import save_tiny_kandinsky

    return save_tiny_kandinsky(tmp_path_factory.mktemp("tiny_k22"))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("loss", LOSSES)
def test_fast_dev_run_on_tiny_kandinsky(variant, loss, tiny_kandinsky, tmp_path, shared_data):
    prior, decoder = tiny_kandinsky
    model = _fast_dev_run([f"model={variant}", f"loss={loss}", "backbone=kandinsky22", f"backbone.prior_model={prior}",
                           f"backbone.decoder_model={decoder}", "backbone.prior_steps=2", "backbone.decoder_steps=2",
                           "backbone.height=64", "backbone.width=64", "backbone.dtype=float32",
                           "dataset.settings.num_frames=4", "dataset.batch_size=4"], tmp_path, shared_data)
    assert model.net.dim == 32 and model.net.text_len == 77
    video = model.generate(["a red circle"], num_frames=3, seed=0)
    assert video.shape == (1, 3, 3, 64, 64)


def test_a_splitter_without_a_backbone_is_refused(tmp_path):
    cfg = compose_cfg("train", ["model=splitter", "loss=splitter_base"], tmp_path / "run")
    with pytest.raises(BadInput, match="backbone=circles_unclip"):
        build_data_and_backbone(cfg)


def test_parameter_counts_at_the_thesis_width_are_the_docs(capsys):
    from pathlib import Path

    from hydra.utils import instantiate

    counts = {}
    for variant in VARIANTS:
        cfg = compose_cfg("train", [f"model={variant}"])
        net = instantiate(cfg.model.net, dim=1280, text_len=77)
        counts[variant] = sum(p.numel() for p in net.parameters())
        print(f"{variant}: {counts[variant]:,} parameters at D=1280, L=77")
    assert counts["splitter"] < counts["splitter_next"] < counts["splitter_dual"] < counts["splitter_dual_csa"]
    page = (Path(__file__).resolve().parents[1] / "docs" / "splitter.md").read_text()
    for variant, n in counts.items():
        assert f"| `{variant}` | {n:,} |" in page, f"docs/splitter.md's parameter table is out of date for {variant}"


def test_train_task_then_reload_with_another_generation_mode(circles_unclip_stack, tmp_path):
    from t2vlab.tasks.common import apply_generation
    from t2vlab.tasks.evaluate import load_run
    from t2vlab.tasks.train import train

    cfg = compose_cfg("train", ["experiment=splitter/dual_transform", "debug=fast", "logger=none",
                                "print_config=false", f"backbone.path={circles_unclip_stack}",
                                "evaluation.clips_per_prompt=1"], tmp_path / "run")
    metrics = train(cfg)
    assert 0 <= metrics["motion_acc/seen_moves"] <= 1 and metrics["train/global_step"] == 4
    assert 0 <= metrics["regression/motion_acc/seen_moves"] <= 1  # the experiment's evaluation.variants
    manifest = tmp_path / "run" / "samples" / "manifest.jsonl"
    tags = {json.loads(line)["tag"] for line in manifest.read_text().splitlines()}
    assert {"evaluation", "regression"} <= tags
    assert list((tmp_path / "data" / "cache" / "embeddings").glob("circles_unclip-circles-*/shard-00000.safetensors"))
    _, _, _, _, model = load_run(str(tmp_path / "run"), None)
    assert model.backbone is not None and model.hparams.mode == "step"
    apply_generation(model, {"mode": "regression", "fix_text_emb": False})
    assert model.generate(["circle moving left"], 4, seed=0).shape == (1, 4, 3, 64, 64)
    with pytest.raises(ValueError, match="generation.mode=sideways"):
        apply_generation(model, {"mode": "sideways"})
    with pytest.raises(ValueError, match="not a setting"):
        apply_generation(model, {"colour": "red"})

    # the same run decoded by a backbone whose decoder alone changed, rescored in place
    import shutil

    from safetensors.torch import load_file, save_file

    sharp = tmp_path / "sharp"
    shutil.copytree(circles_unclip_stack, sharp)
    weights = next((sharp / "decoder").glob("*.safetensors"))
    state = load_file(weights)
    save_file({k: v + 0.01 if k.startswith("out.") else v for k, v in state.items()}, weights)
    rescore = load_script("rescore_circles")
    assert rescore.main([str(tmp_path / "run"), "--backbone", str(sharp)]) == [tmp_path / "run"]
    again = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert again["backbone/identity"] == rescore_identity(sharp) != model.backbone.identity
    (old_values,) = again["superseded"].values()
    assert next(iter(again["superseded"])).startswith("circles-v2 decoded by")
    assert old_values["motion_acc/seen_moves"] == metrics["motion_acc/seen_moves"]
    assert "regression/motion_acc/seen_moves" in again and "regression/motion_acc/seen_moves" in old_values


def rescore_identity(folder):
    from t2vlab.backbones.circles_unclip import CirclesUnclipBackbone

    return CirclesUnclipBackbone(path=str(folder)).identity


def test_a_bad_generation_variant_stops_training_before_the_first_step(circles_unclip_stack, tmp_path):
    from t2vlab.tasks.train import train

    cfg = compose_cfg("train", ["experiment=splitter/dual_base", "debug=fast", "logger=none", "print_config=false",
                                f"backbone.path={circles_unclip_stack}", "+evaluation.variants.back.mode=sideways"],
                      tmp_path / "run")
    with pytest.raises(BadInput, match="evaluation.variants.back.mode=sideways is invalid; allowed: step, regression"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()
