"""What only a CUDA GPU can show: every model option trained, resumed and evaluated under hardware=t4 (fp16 mixed)
and hardware=a10 (bf16 mixed), the Kandinsky 2.2 loading path in half precision with CPU offload, FVD on the GPU,
DDP, and the training throughput a GPU user should expect.

    make gpu-check                                          # every check, on the CUDA device
    .venv/bin/python scripts/gpu_check.py --checks fit fvd --models video_gan gan
    .venv/bin/python scripts/gpu_check.py --device cpu      # the same logic on the CPU (what the tests run)

Without CUDA (and no --device cpu) it prints what it would have checked and exits 0. Checks, one table row each
(the table and every measured value also go to <out>/report.json; exit status 1 if any failed):

fit         per model option and precision: a short fit (debug=fast) whose logged losses are all finite, its
            checkpoint reloaded as evaluate.py reloads it, a resume from that checkpoint for two more optimiser
            steps, and evaluate.py on the run. Then the losses logged at the first batch against the same config
            on the CPU in fp32: both runs start from the same weights (initialised on the CPU under one seed) and
            the same data, and draw every random number on the CPU (`same_draws_on_cpu`), so they differ only by
            the device's arithmetic. Allowed, |gpu - cpu| <= tol * max(|cpu|, 0.01): fp32 1e-3 (TF32 off; summation
            order alone moves a float32 loss by ~1e-6 relative), fp16 autocast 1e-2 (unit roundoff 2^-11 = 4.9e-4
            on every matmul input, a few such roundings per layer through ~10 layers), bf16 autocast 5e-2 (unit
            roundoff 2^-8 = 3.9e-3, the same count).
backbone    the tiny Kandinsky 2.2 pipelines of the tests, saved and loaded through `from_pretrained` on the
            device in fp16 and bf16 with backbone.offload=none|model|sequential: text encoding, prior and decoder
            give finite outputs of the right shape.
fvd         I3D features and FVD of the same clips on the device and on the CPU: FVD within 1e-3 relative.
ddp         `train.py hardware=ddp` on every GPU there is, as a subprocess (DDP starts its workers from the
            command line).
throughput  bench/train_throughput.py's loop for one recipe per family on the device, with MFU against matmul
            peaks measured there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]  # train_throughput's loop; the tiny Kandinsky 2.2 parts

CHECKS = ("fit", "backbone", "fvd", "ddp", "throughput")
SPLITTER = "backbone.path={stack}"
# model option -> the overrides of its short fit ({stack}: the circles_unclip stack the fit of circles_unclip
# exports; {tokenizer}: the tokenizer run of the fit of magvit_tokenizer). Listed in the order they depend on.
MODELS = {
    "video_gan": ["experiment=video_gan_circles"],
    "video_gan_layered": ["experiment=video_gan_layered_circles"],
    "gan": ["experiment=gan_seed"],
    "keypoint_vae": ["experiment=keypoint_vae_circles", "model=keypoint_vae"],
    "keypoint_vae_diffusion_prior": ["experiment=keypoint_vae_circles", "model.prior_fit_steps=2",
                                     "model.prior_fit_clips=8"],
    "circles_unclip": ["experiment=circles_unclip", "model.ae_steps=2", "model.quality_clips=2",
                       "model.stats_clips=8", "model.export_dir={stack}"],
    "splitter": ["experiment=splitter/plain_base", SPLITTER],
    "splitter_transform": ["experiment=splitter/plain_transform", SPLITTER],
    "splitter_next": ["experiment=splitter/next_base", SPLITTER],
    "splitter_dual": ["experiment=splitter/dual_base", SPLITTER],
    "splitter_dual_csa": ["experiment=splitter/dual_csa_base", SPLITTER],
    "magvit_tokenizer": ["experiment=magvit_tokenizer_circles"],
    "magvit": ["experiment=magvit_circles", "model.tokenizer_ckpt={tokenizer}"],
}
NEEDS = {"{stack}": "circles_unclip", "{tokenizer}": "magvit_tokenizer"}
# the Splitter's head is zero-initialised: its first prediction is the start embedding itself in any precision, so
# its comparison with the CPU reads the second logged step (after one optimiser step)
COMPARED_ROW = {name: 1 for name in MODELS if name.startswith("splitter")}
# precision name -> (hardware overrides on a GPU, on the CPU, tolerance of the first batch's losses)
PRECISIONS = {
    "t4": (["hardware=t4"], ["hardware=cpu", "trainer.precision=32-true"], 1e-2),
    "a10": (["hardware=a10"], ["hardware=cpu", "trainer.precision=bf16-mixed"], 5e-2),
}
FP32_TOLERANCE = 1e-3
# one recipe per family for the throughput table (the Splitter's and MAGVIT transformer's need the fit's stack
# and tokenizer, and are added when those fits ran)
THROUGHPUT = {"keypoint_vae": ["experiment=keypoint_vae_circles"], "video_gan": ["experiment=video_gan_circles"],
              "gan": ["experiment=gan_seed"], "magvit_tokenizer": ["experiment=magvit_tokenizer_circles"]}
FAST = ["debug=fast", "logger=none", "print_config=false", "callbacks.metric_history.every_n_steps=1",
        "evaluation.clips_per_prompt=1"]
EVALUATE_SMALL = ["clips_per_prompt=1", "protocol.metrics.classifier.num_train=64",
                  "protocol.metrics.classifier.epochs=1", "protocol.metrics.classifier.num_heldout=32",
                  "wandb_summary=false"]


@dataclass
class Row:
    check: str
    case: str
    ok: bool
    detail: str
    values: dict = field(default_factory=dict)
    seconds: float = 0.0
    skipped: bool = False


# ---------------------------------------------------------------------------------------------- same random draws
@contextlib.contextmanager
def same_draws_on_cpu():
    """Every torch.rand*/randn*/randint*/randperm/multinomial/dropout draw made on the CPU generator and then moved
    to the device asked for, so a run on a GPU draws the same numbers as the same run on the CPU (CUDA's
    generator is another algorithm). Dropout masks come from torch.rand the same way on both."""
    saved = {}

    def on_cpu(fn):
        def draw(*args, device=None, generator=None, **kw):
            if generator is not None or device is None or torch.device(device).type == "cpu":
                return fn(*args, device=device, generator=generator, **kw)
            return fn(*args, device="cpu", **kw).to(device)
        return draw

    def like_on_cpu(fn):
        def draw(x, *args, device=None, **kw):
            return fn(x.cpu(), *args, **kw).to(device or x.device)
        return draw

    def multinomial(x, *args, **kw):
        return saved["multinomial"](x.cpu(), *args, **kw).to(x.device)

    def dropout(x, p=0.5, training=True, inplace=False):
        if not training or p == 0:
            return x
        keep = torch.rand(x.shape, device=x.device) >= p
        return x * keep.to(x.dtype) / (1 - p)

    patches = {name: on_cpu(getattr(torch, name)) for name in ("rand", "randn", "randint", "randperm")}
    patches |= {name: like_on_cpu(getattr(torch, name)) for name in ("rand_like", "randn_like", "randint_like")}
    patches["multinomial"] = multinomial
    for name, fn in patches.items():
        saved[name] = getattr(torch, name)
        setattr(torch, name, fn)
    saved_dropout = torch.nn.functional.dropout
    torch.nn.functional.dropout = dropout
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch, name, fn)
        torch.nn.functional.dropout = saved_dropout


@contextlib.contextmanager
def no_tf32():
    """fp32 on a GPU as on the CPU: cuDNN's convolutions otherwise run in TF32 (10-bit mantissa) by default."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol * max(abs(b), 0.01)


def against_cpu(check: str, case: str, ours: dict[str, float], cpu: dict[str, float], tol: float) -> Row:
    """The losses logged at the first batch (every train/ value with "loss" in its name) against the CPU's; the
    other logged values (accuracies, entropies, ...) are reported, not judged."""
    shared = sorted(set(ours) & set(cpu))
    relative = {k: abs(ours[k] - cpu[k]) / max(abs(cpu[k]), 0.01) for k in shared}
    losses = [k for k in shared if "loss" in k.rsplit("/", 1)[-1]]
    off = {k: (ours[k], cpu[k]) for k in losses if not close(ours[k], cpu[k], tol)}
    worst = max((relative[k] for k in losses), default=0.0)
    others = max((relative[k] for k in shared if k not in losses), default=0.0)
    counted = f"{len(losses)} loss{'es' if len(losses) != 1 else ''}"
    detail = (f"{counted} within {tol:g} of the CPU's fp32 (worst {worst:.1e}; other logged values up to "
              f"{others:.1e})" if not off else f"off by more than {tol:g}: {off}")
    return Row(check, case, bool(losses) and not off, detail,
               {"losses": losses, "worst_relative": worst, "others_worst_relative": others})


def guarded(check: str, case: str, fn: Callable[[], Row | list[Row]]) -> list[Row]:
    """One check's rows; an exception becomes a failed row with its last line (the traceback goes to stderr)."""
    start = time.perf_counter()
    try:
        out = fn()
        rows = out if isinstance(out, list) else [out]
    except Exception as e:  # noqa: BLE001 (a check that raises is a finding to report, not a reason to stop)
        traceback.print_exc()
        rows = [Row(check, case, False, f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e) else ''}")]
    rows[0].seconds = round(time.perf_counter() - start, 1)  # the whole group's time, on its first row
    return rows


# ------------------------------------------------------------------------------------------------------------ fit
class Fits:
    def __init__(self, work: Path, device: str, fvd_weights: str | None) -> None:
        self.work, self.device, self.fvd_weights = work, device, fvd_weights
        self.paths = {"{stack}": work / "circles_unclip_stack", "{tokenizer}": None}

    def overrides(self, model: str) -> list[str]:
        out = []
        for item in MODELS[model]:
            for key, path in self.paths.items():
                if key in item:
                    if path is None:
                        raise RuntimeError(f"{model} needs the fit of {NEEDS[key]} first; add it to --models")
                    item = item.replace(key, str(path))
            out.append(item)
        return out

    def hardware(self, precision: str) -> list[str]:
        gpu, cpu, _ = PRECISIONS[precision]
        return gpu if self.device == "cuda" else cpu

    def train(self, overrides: list[str], out: Path) -> dict:
        from t2vlab.tasks.compose import compose_run
        from t2vlab.tasks.train import train

        with same_draws_on_cpu():
            return train(compose_run("train", [*FAST, *overrides], out))

    def first_losses(self, run: Path, model: str) -> dict[str, float]:
        """The train/ values of the first logged step (for the Splitter the second, COMPARED_ROW)."""
        from t2vlab.callbacks.metric_history import read_history

        rows, row = read_history(run / "history.jsonl"), COMPARED_ROW.get(model, 0)
        if len(rows) <= row:
            raise RuntimeError(f"{run}/history.jsonl logged {len(rows)} steps; the comparison reads step {row + 1}")
        return {k: v for k, v in rows[row].items() if k.startswith("train/") and isinstance(v, float)}

    def cpu_reference(self, model: str) -> dict[str, float]:
        run = self.work / f"{model}-cpu-fp32"
        if not (run / "history.jsonl").is_file():
            self.train([*self.overrides(model), "hardware=cpu", "trainer.precision=32-true"], run)
        return self.first_losses(run, model)

    def case(self, model: str, precision: str) -> list[Row]:
        from t2vlab.callbacks.metric_history import read_history
        from t2vlab.tasks.compose import compose_run
        from t2vlab.tasks.evaluate import evaluate, load_run

        name = f"{model} {precision}"
        run = self.work / f"{model}-{precision}"
        overrides = [*self.overrides(model), *self.hardware(precision)]
        start = time.perf_counter()
        metrics = self.train(overrides, run)
        if model == "magvit_tokenizer":
            self.paths["{tokenizer}"] = run
        bad = [f"{k}={v} at step {r['step']}" for r in read_history(run / "history.jsonl") for k, v in r.items()
               if k.startswith("train/") and not (isinstance(v, float) and math.isfinite(v))]
        rows = [Row("fit", name, not bad, f"{metrics['train/global_step']} steps in "
                    f"{time.perf_counter() - start:.1f} s, losses finite" if not bad else f"not finite: {bad[:3]}")]
        _, _, _, _, reloaded = load_run(str(run), None)
        rows.append(Row("fit: reload", name, True, f"{type(reloaded).__name__} from {run.name}/checkpoints/last.ckpt"))
        steps = metrics["train/global_step"] + 2
        resumed = self.train([*overrides, f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
                              f"trainer.max_steps={steps}"], self.work / f"{model}-{precision}-resumed")
        rows.append(Row("fit: resume", name, resumed["train/global_step"] == steps,
                        f"resumed to step {resumed['train/global_step']} (asked {steps})"))
        if reloaded.generates_video:
            fvd = [f"protocol.metrics.fvd.device={self.device}"]
            fvd += [f"protocol.metrics.fvd.weights={self.fvd_weights}"] if self.fvd_weights else []
            report = evaluate(compose_run("evaluate", [f"run_dir={run}", f"device={self.device}", *EVALUATE_SMALL,
                                                       *fvd], self.work / f"{model}-{precision}-evaluate"))
            value = report["metrics"]["fvd"].get("value")
            ok = value is not None and math.isfinite(value)
            rows.append(Row("fit: evaluate", name, ok, f"evaluate.py: FVD {value} over "
                            f"{report['metrics']['fvd'].get('n')} clips", {"fvd": value}))
        tol = PRECISIONS[precision][2]
        rows.append(against_cpu("fit: = cpu at step 0", name, self.first_losses(run, model),
                                self.cpu_reference(model), tol))
        if model in COMPARED_ROW:
            rows[-1].detail += " (the second logged step: the head starts at zero)"
        return rows

    def fp32_case(self, model: str) -> Row:
        """The first batch in fp32 on the device against the CPU: device placement alone, at 1e-3."""
        run = self.work / f"{model}-device-fp32"
        with no_tf32():
            self.train([*self.overrides(model), "hardware=a10", "trainer.precision=32-true",
                        "trainer.max_steps=2"], run)
        return against_cpu("fit: fp32 = cpu", model, self.first_losses(run, model), self.cpu_reference(model),
                           FP32_TOLERANCE)


def check_fits(work: Path, device: str, models: list[str], precisions: list[str], fvd_weights: str | None,
               progress: Callable[[list[Row]], None] = lambda rows: None) -> tuple[list[Row], Fits]:
    """`progress(rows so far)` after each model option."""
    fits = Fits(work, device, fvd_weights)
    rows = []
    for model in models:
        for precision in precisions:
            rows += guarded("fit", f"{model} {precision}", lambda m=model, p=precision: fits.case(m, p))
        if device == "cuda":
            rows += guarded("fit: fp32 = cpu", model, lambda m=model: fits.fp32_case(m))
        progress(rows)
    return rows, fits


# ------------------------------------------------------------------------------------------------------- backbone
def check_backbone(work: Path, device: str) -> list[Row]:
    from tiny_kandinsky import save_tiny_kandinsky

    from t2vlab.backbones.kandinsky22 import Kandinsky22Backbone

    prior, decoder = save_tiny_kandinsky(work / "tiny_kandinsky22")
    dtypes = ["float16", "bfloat16"] if device == "cuda" else ["float32", "bfloat16"]
    offloads = ["none", "model", "sequential"] if device == "cuda" else ["none"]
    rows = []
    for dtype in dtypes:
        for offload in offloads:
            def one(dtype=dtype, offload=offload) -> Row:
                bb = Kandinsky22Backbone(prior_model=str(prior), decoder_model=str(decoder), device=device,
                                         dtype=dtype, offload=offload, prior_steps=3, decoder_steps=2, height=64,
                                         width=64, zero_embed_dir=str(work / "zero_embed"))
                hidden, pooled = bb.encode_text(["a red circle moving left"])
                image = bb.prior(["a red circle moving left"], seed=0)
                frames = bb.decode(image.repeat(2, 1), seed=0)
                finite = all(bool(torch.isfinite(t.float()).all()) for t in (hidden, pooled, image, frames))
                shape_ok = tuple(frames.shape[-3:]) == (3, 64, 64)
                return Row("backbone", f"kandinsky22 {dtype} offload={offload}", finite and shape_ok,
                           f"from_pretrained on {device}; text {tuple(hidden.shape)}, frames {tuple(frames.shape)}, "
                           f"{'finite' if finite else 'NOT finite'}")
            rows += guarded("backbone", f"kandinsky22 {dtype} offload={offload}", one)
    return rows


# ------------------------------------------------------------------------------------------------------------ fvd
def check_fvd(work: Path, device: str, fvd_weights: str | None) -> list[Row]:
    from t2vlab.data.circles import CirclesSettings, generate
    from t2vlab.evaluation.metrics.fvd import FVD

    def clips(seed: int) -> torch.Tensor:
        videos, _, _ = generate(CirclesSettings(num_videos=16, num_frames=16, seed=seed))
        return torch.from_numpy(videos).permute(0, 1, 4, 2, 3).float() / 255

    def one() -> Row:
        a, b = clips(1), clips(2)
        kw = {"weights": fvd_weights} if fvd_weights else {}
        on_cpu = FVD(cache_dir=str(work / "fvd_cpu"), device="cpu", progress=False, **kw)(a, b).value
        on_device = FVD(cache_dir=str(work / "fvd_device"), device=device, progress=False, **kw)(a, b).value
        rel = abs(on_device - on_cpu) / abs(on_cpu)
        return Row("fvd", f"16 clips, {device} vs cpu", rel <= 1e-3,
                   f"FVD {on_device:.4f} on {device}, {on_cpu:.4f} on cpu: {rel:.1e} relative (allowed 1e-3)",
                   {"device": on_device, "cpu": on_cpu, "relative": rel})

    return guarded("fvd", f"{device} vs cpu", one)


# ------------------------------------------------------------------------------------------------------------ ddp
def check_ddp(work: Path, device: str) -> list[Row]:
    def one() -> Row:
        if device == "cuda":
            extra = ["hardware=ddp"]
            devices = torch.cuda.device_count()
        else:
            extra = ["hardware=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"]
            devices = 2
        out = work / "ddp"
        command = [sys.executable, str(ROOT / "train.py"), "experiment=video_gan_circles", *FAST, *extra,
                   f"hydra.run.dir={out}"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
        metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").is_file() else {}
        ok = done.returncode == 0 and metrics.get("train/global_step", 0) > 0
        tail = done.stderr.strip().splitlines()[-1:] if not ok else []
        return Row("ddp", f"video_gan on {devices} {device} device(s)", ok,
                   f"train.py hardware=ddp: {metrics.get('train/global_step')} steps" + (f"; {tail}" if tail else ""))

    return guarded("ddp", device, one)


# ----------------------------------------------------------------------------------------------------- throughput
def check_throughput(device: str, fits: Fits | None, families: list[str], iterations: int,
                     data_clips: int | None) -> tuple[list[Row], list[dict]]:
    from train_throughput import measure

    from t2vlab.runtime.flops import measure_peaks

    recipes = dict(THROUGHPUT)
    rows, table = [], []
    stack = fits.paths["{stack}"] if fits is not None else None
    tokenizer = fits.paths["{tokenizer}"] if fits is not None else None
    if tokenizer is not None:
        recipes["magvit"] = ["experiment=magvit_circles", f"model.tokenizer_ckpt={tokenizer}",
                             "dataset.settings.num_videos=256", f"paths.cache_dir={fits.work / 'cache'}"]
    if stack is not None and (stack / "t2vlab.json").is_file():
        recipes["splitter"] = ["experiment=splitter_circles", f"backbone.path={stack}",
                               f"paths.cache_dir={fits.work / 'cache'}"]
    for family, fit in (("magvit", "magvit_tokenizer"), ("splitter", "circles_unclip")):
        if family in families and family not in recipes:
            rows.append(Row("throughput", family, True, f"skipped: needs the fit of {fit} in this run "
                            f"(--checks fit ... --models {fit} ...)", skipped=True))
    recipes = {family: recipe for family, recipe in recipes.items() if family in families}
    if data_clips:
        recipes = {family: [*recipe, f"dataset.settings.num_videos={data_clips}"] for family, recipe in recipes.items()}
    peaks = measure_peaks(device=device)
    precisions = ["16-mixed", "bf16-mixed"] if device == "cuda" else ["32-true", "bf16-mixed"]
    for family, overrides in recipes.items():
        for precision in precisions:
            def one(family=family, overrides=overrides, precision=precision) -> Row:
                accelerator = "gpu" if device == "cuda" else "cpu"
                r = measure(overrides, precision, iterations, max(2, iterations // 6), peaks, accelerator)
                table.append({"family": family, **r})
                u = r["utilisation"]
                return Row("throughput", f"{family} {precision}", r["frames_per_second"] > 0,
                           f"{r['clips_per_second']:.1f} clips/s, {r['frames_per_second']:.0f} frames/s; "
                           f"{u['achieved_gflops']:.0f} GFLOP/s, MFU {100 * u['mfu_bf16']:.1f}% of the bf16 peak "
                           f"({u['peak_bf16_gflops']:.0f}), {100 * u['mfu_fp32']:.1f}% of fp32 "
                           f"({u['peak_fp32_gflops']:.0f})",
                           {"frames_per_second": r["frames_per_second"], **u})
            rows += guarded("throughput", f"{family} {precision}", one)
    return rows, table


# ----------------------------------------------------------------------------------------------------------- main
def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return platform.processor() or platform.machine()


def print_table(rows: list[Row], title: str, console: Console) -> None:
    table = Table(title=title)
    for column in ("check", "case", "result", "seconds", "detail"):
        table.add_column(column, overflow="fold")
    for r in rows:
        result = "[yellow]skipped[/]" if r.skipped else "[green]ok[/]" if r.ok else "[red]FAILED[/]"
        table.add_row(r.check, r.case, result,
                      f"{r.seconds:.1f}" if r.seconds else "", r.detail)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default=None, help="default: cuda where there is one")
    parser.add_argument("--checks", nargs="+", choices=CHECKS, default=list(CHECKS))
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--precisions", nargs="+", choices=list(PRECISIONS), default=list(PRECISIONS))
    parser.add_argument("--families", nargs="+", choices=[*THROUGHPUT, "magvit", "splitter"],
                        default=[*THROUGHPUT, "magvit", "splitter"],
                        help="throughput rows (magvit, splitter: after the fits of magvit_tokenizer, circles_unclip)")
    parser.add_argument("--iterations", type=int, default=30, help="timed iterations per throughput row")
    parser.add_argument("--data-clips", type=int, default=1024, help="throughput: clips in the data set (rendered "
                        "for each row; the speed of a step does not depend on it)")
    parser.add_argument("--fvd-weights", default=None, help="an I3D file instead of the original network")
    parser.add_argument("--out", default=None, help="default: outputs/gpu_check/<time>")
    args = parser.parse_args(argv)
    console = Console(width=200)  # the details stay on one line in a log file too
    device = args.device or ("cuda" if torch.cuda.is_available() else None)
    if device is None:
        print(f"gpu_check: no CUDA device here; it would have checked {', '.join(args.checks)} for "
              f"{len(args.models)} model options under {', '.join(args.precisions)} (--device cpu runs the same "
              "logic on the CPU)")
        return 0
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device (torch.cuda.is_available() is False)")

    from t2vlab.runtime.resolvers import register_resolvers

    register_resolvers()
    work = Path(args.out or ROOT / "outputs" / "gpu_check" / time.strftime("%Y-%m-%d_%H-%M-%S")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows: list[Row] = []
    fits, throughput = None, []
    name = device_name(device)

    def save(complete: bool, pending: list[Row] = ()) -> None:
        """report.json after every model's fits and every group of checks, so a run stopped at a time limit
        keeps what it measured."""
        report = {"device": device, "name": name, "torch": torch.__version__, "complete": complete,
                  "seconds": round(time.perf_counter() - started, 1),
                  "rows": [asdict(r) for r in [*rows, *pending]], "throughput": throughput}
        (work / "report.json").write_text(json.dumps(report, indent=2, default=str))

    if "fit" in args.checks:
        found, fits = check_fits(work, device, args.models, args.precisions, args.fvd_weights,
                                 progress=lambda so_far: save(False, so_far))
        rows += found
    if "backbone" in args.checks:
        rows += check_backbone(work, device)
        save(False)
    if "fvd" in args.checks:
        rows += check_fvd(work, device, args.fvd_weights)
        save(False)
    if "ddp" in args.checks:
        rows += check_ddp(work, device)
        save(False)
    if "throughput" in args.checks:
        found, throughput = check_throughput(device, fits, args.families, args.iterations, args.data_clips)
        rows += found
    save(True)
    print_table(rows, f"gpu_check on {name} ({device}), {(time.perf_counter() - started) / 60:.1f} min", console)
    failed = [r for r in rows if not r.ok]
    skipped = sum(r.skipped for r in rows)
    console.print(f"{len(rows) - len(failed) - skipped} of {len(rows) - skipped} checks passed"
                  f"{f', {skipped} skipped' if skipped else ''}; report: {work / 'report.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
