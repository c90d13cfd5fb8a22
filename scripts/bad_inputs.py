"""Try bad inputs through the real entry points and tally how each is met.

    .venv/bin/python scripts/bad_inputs.py [--only SUBSTRING ...] [--out bad_inputs.md]

Each case runs one command in a fresh workspace (T2VLAB_ROOT points at a temporary folder, so nothing lands in
the checkout) and is judged by what a user sees:
- refused: exit code 2, the last line of stderr starts with "error:" and names the expected key, no traceback,
  and no checkpoint, sample, W&B run or data cache written;
- repaired: exit code 0 and a warning naming the damaged file (caches that fail their checksum are rebuilt);
- skipped: exit code 0 and the damaged file named in metrics.json (evaluate.py videos= folders).
Anything else is counted as a failure, with its last line, so the tally cannot pass by accident.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

TINY = ["debug=fast", "logger=none", "print_config=false", "trainer.max_steps=2", "evaluation.clips_per_prompt=1",
        "callbacks.video_sampler=null"]
WRITTEN = ("checkpoints", "samples", "wandb", "metrics.json")  # what a refused run must not leave behind


@dataclass
class Case:
    name: str
    argv: list[str]  # after the interpreter; {ws} is the workspace, {run} a trained tiny run
    expect: str  # refused | repaired | skipped
    needle: str  # in the last stderr line (refused), the output (repaired) or metrics.json (skipped)
    tags: list[str] = field(default_factory=list)


def cases() -> list[Case]:
    t, e, p, m = "train.py", "evaluate.py", "prepare.py", "embed.py"
    fvd = ["-m", "t2vlab.evaluation.metrics.fvd"]
    c = [
        # wrong types
        Case("train: dataset.batch_size=abc", [t, "dataset.batch_size=abc"], "refused", "dataset.batch_size"),
        Case("train: model.lr_g=fast", [t, "model.lr_g=fast"], "refused", "model.lr_g"),
        Case("train: trainer.max_steps=abc", [t, "trainer.max_steps=abc"], "refused", "trainer.max_steps"),
        Case("train: trainer.max_steps=1.5", [t, "trainer.max_steps=1.5"], "refused", "trainer.max_steps"),
        Case("train: seed=abc", [t, "seed=abc"], "refused", "seed"),
        Case("train: dataset.settings.num_videos=many", [t, "dataset.settings.num_videos=many"], "refused",
             "dataset.settings.num_videos"),
        Case("train: evaluation.clips_per_prompt=abc", [t, "evaluation.clips_per_prompt=abc"], "refused",
             "evaluation.clips_per_prompt"),
        Case("evaluate: clips_per_prompt=abc", [e, "clips_per_prompt=abc"], "refused", "clips_per_prompt"),
        Case("evaluate: seeds=abc", [e, "seeds=abc"], "refused", "seeds"),
        Case("embed: embedding_cache.shard_size=big", [m, "embedding_cache.shard_size=big"], "refused",
             "embedding_cache.shard_size"),
        # ranges
        Case("train: model.ema_decay=1.5", [t, "model.ema_decay=1.5"], "refused", "model.ema_decay"),
        Case("train: dataset.num_workers=-1", [t, "dataset.num_workers=-1"], "refused", "dataset.num_workers"),
        Case("train: dataset.batch_size=0", [t, "dataset.batch_size=0"], "refused", "dataset.batch_size"),
        Case("train: model.lr_g=-0.1", [t, "model.lr_g=-0.1"], "refused", "model.lr_g"),
        Case("train: dataset.settings.num_frames=1", [t, "dataset.settings.num_frames=1"], "refused",
             "dataset.settings.num_frames"),
        Case("train: dataset.settings.image_size=8", [t, "dataset.settings.image_size=8"], "refused",
             "dataset.settings.image_size"),
        Case("train: dataset.settings.radius=[9,3]", [t, "dataset.settings.radius=[9,3]"], "refused",
             "dataset.settings.radius"),
        Case("train: dataset.settings.speed=[0,1]", [t, "dataset.settings.speed=[0,1]"], "refused",
             "dataset.settings.speed"),
        Case("train: dataset.settings.colors=[[300,0,0]]", [t, "dataset.settings.colors=[[300,0,0]]"], "refused",
             "dataset.settings.colors"),
        Case("train: dataset.settings.start_jitter=2", [t, "dataset.settings.start_jitter=2"], "refused",
             "dataset.settings.start_jitter"),
        Case("train: evaluation.clips_per_prompt=0", [t, "evaluation.clips_per_prompt=0"], "refused",
             "evaluation.clips_per_prompt"),
        Case("train: optimized_direction=up", [t, "optimized_direction=up"], "refused", "optimized_direction"),
        Case("evaluate: num_frames=0", [e, "run_dir={run}", "num_frames=0"], "refused", "num_frames"),
        Case("evaluate: clips_per_prompt=-3", [e, "run_dir={run}", "clips_per_prompt=-3"], "refused",
             "clips_per_prompt"),
        Case("embed: embedding_cache.shard_size=0", [m, "embedding_cache.shard_size=0"], "refused",
             "embedding_cache.shard_size"),
        # unknown keys and options
        Case("train: model=nonexistent", [t, "model=nonexistent"], "refused", "model"),
        Case("train: experiment=nonexistent", [t, "experiment=nonexistent"], "refused", "experiment"),
        Case("train: hardware=tpu", [t, "hardware=tpu"], "refused", "hardware"),
        Case("train: logger=bogus", [t, "logger=bogus"], "refused", "logger"),
        Case("train: loss=magvit_commit (does not fit the GAN)", [t, "loss=magvit_commit"], "refused", "loss"),
        Case("train: model.bogus=1", [t, "+model.bogus=1"], "refused", "model.bogus"),
        Case("train: dataset.settings.bogus=1", [t, "+dataset.settings.bogus=1"], "refused",
             "dataset.settings.bogus"),
        Case("evaluate: protocol=bogus", [e, "protocol=bogus"], "refused", "protocol"),
        Case("prepare: dataset=bogus", [p, "dataset=bogus"], "refused", "dataset"),
        Case("embed: backbone=bogus", [m, "backbone=bogus"], "refused", "backbone"),
        # prompts
        Case("train: dataset.holdout_prompts=[circle flying]", [t, "dataset.holdout_prompts=[circle flying]"],
             "refused", "dataset.holdout_prompts"),
        Case("train: dataset.settings.prompts=[a circle dancing]", [t, "dataset.settings.prompts=[a circle dancing]"],
             "refused", "dataset.settings.prompts"),
        Case("evaluate: prompts=[circle flying]", [e, "run_dir={run}", "prompts=[circle flying]"], "refused",
             "prompts"),
        # files and folders named in the config
        Case("train: ckpt_path=<missing file>", [t, "ckpt_path={ws}/missing.ckpt"], "refused", "ckpt_path"),
        Case("train: ckpt_path=last with no earlier run", [t, *TINY, "ckpt_path=last"], "refused", "ckpt_path"),
        Case("evaluate: run_dir=<missing folder>", [e, "run_dir={ws}/no_run"], "refused", "run_dir"),
        Case("evaluate: videos=<missing folder>", [e, "videos={ws}/no_videos"], "refused", "videos"),
        Case("evaluate: videos=<folder without a manifest>", [e, "videos={ws}/empty"], "refused", "videos"),
        Case("prepare: dataset=tgif, tsv missing", [p, "dataset=tgif", "dataset.tsv={ws}/missing.tsv"],
             "refused", "dataset.tsv"),
        Case("train: dataset=msrvtt not prepared", [t, "dataset=msrvtt", "dataset.annotations={ws}/no.json"],
             "refused", "dataset"),
        Case("embed: circles_unclip not built", [m, "backbone.path={ws}/no_backbone"], "refused", "backbone"),
        # memory
        Case("train: dataset.settings.image_size=1024 (terabytes)", [t, "dataset.settings.image_size=1024"],
             "refused", "dataset.settings"),
        Case("train: dataset.settings.num_videos=100000000", [t, "dataset.settings.num_videos=100000000"],
             "refused", "dataset.settings"),
        # damaged checkpoints
        Case("train: ckpt_path=<random bytes>", [t, *TINY, "ckpt_path={ws}/random.ckpt"], "refused", "ckpt_path"),
        Case("train: ckpt_path=<checkpoint cut in half>", [t, *TINY, "ckpt_path={ws}/half.ckpt"], "refused",
             "ckpt_path"),
        Case("train: ckpt_path=<checkpoint with flipped bytes>", [t, *TINY, "ckpt_path={ws}/flipped.ckpt"],
             "refused", "ckpt_path"),
        Case("train: ckpt_path=<empty file>", [t, *TINY, "ckpt_path={ws}/empty.ckpt"], "refused", "ckpt_path"),
        Case("train: ckpt_path=<a bare state_dict>", [t, *TINY, "ckpt_path={ws}/state_dict.ckpt"], "refused",
             "ckpt_path"),
        Case("evaluate: ckpt_path=<text file>", [e, "ckpt_path={ws}/text.ckpt"], "refused", "ckpt_path"),
        Case("evaluate: run_dir=<run whose last.ckpt is random bytes>", [e, "run_dir={ws}/run_random"], "refused",
             "run_dir"),
        # damaged videos
        Case("evaluate: videos=<good clips + damaged ones>", [e, "videos={ws}/mixed"], "skipped", "truncated.gif"),
        Case("evaluate: videos=<only damaged clips>", [e, "videos={ws}/all_bad"], "refused", "videos"),
        Case("fvd: a damaged GIF in a folder", [*fvd, "{ws}/npy_a", "{ws}/bad_b"], "refused", "bad.gif"),
        Case("fvd: --num-frames 16 of 10-frame videos", [*fvd, "{ws}/npy_a", "{ws}/npy_b", "--num-frames", "16"],
             "refused", "num_frames=16"),
        Case("fvd: --batch-size 0", [*fvd, "{ws}/npy_a", "{ws}/npy_b", "--batch-size", "0"], "refused",
             "--batch-size"),
        Case("fvd: --prefixes 10 40 of 10-frame videos", [*fvd, "{ws}/npy_a", "{ws}/npy_b", "--prefixes", "10", "40"],
             "refused", "prefixes"),
        Case("fvd: missing folder", [*fvd, "{ws}/npy_a", "{ws}/nowhere"], "refused", "nowhere"),
        Case("fvd: --weights <missing file>", [*fvd, "{ws}/npy_a", "{ws}/npy_b", "--weights", "{ws}/nope.pt"],
             "refused", "nope.pt"),
        # damaged caches
        Case("train: circles cache cut in half", [t, *TINY], "repaired", "fails its sha256 check", ["cut_cache"]),
        Case("train: circles cache with flipped bytes", [t, *TINY], "repaired", "fails its sha256 check",
             ["flip_cache"]),
        Case("train: circles cache without its checksum", [t, *TINY], "repaired", "checksum sidecar",
             ["drop_sidecar"]),
    ]
    return c


def write_fixtures(ws: Path, run: Path) -> None:
    """Damaged and plain files the cases name."""
    import torch

    from t2vlab.data.video_io import write_video

    rng = np.random.default_rng(0)
    (ws / "random.ckpt").write_bytes(rng.bytes(4096))
    good = (run / "checkpoints" / "last.ckpt").read_bytes()
    (ws / "half.ckpt").write_bytes(good[: len(good) // 2])
    flipped = bytearray(good)
    mid = len(flipped) // 2
    flipped[mid:mid + 64] = bytes(255 - b for b in flipped[mid:mid + 64])
    (ws / "flipped.ckpt").write_bytes(bytes(flipped))
    (ws / "empty.ckpt").write_bytes(b"")
    torch.save({"weight": torch.zeros(2)}, ws / "state_dict.ckpt")
    (ws / "text.ckpt").write_text("not a checkpoint\n")
    bad_run = ws / "run_random"
    (bad_run / "checkpoints").mkdir(parents=True)
    (bad_run / ".hydra").mkdir()
    (bad_run / ".hydra" / "config.yaml").write_text((run / ".hydra" / "config.yaml").read_text())
    (bad_run / "checkpoints" / "last.ckpt").write_bytes(rng.bytes(4096))
    (ws / "empty").mkdir()
    for name, damaged in (("mixed", ["truncated.gif", "random.gif"]), ("all_bad", ["truncated.gif", "random.gif"])):
        folder = ws / name
        folder.mkdir()
        lines = []
        for i in range(3 if name == "mixed" else 0):
            write_video(torch.rand(10, 3, 64, 64), folder / f"good{i}.gif")
            lines.append({"prompt": "circle moving left", "path": f"good{i}.gif"})
        write_video(torch.rand(10, 3, 64, 64), folder / "truncated.gif")
        data = (folder / "truncated.gif").read_bytes()
        (folder / "truncated.gif").write_bytes(data[: len(data) // 3])
        (folder / "random.gif").write_bytes(rng.bytes(2048))
        lines += [{"prompt": "circle moving left", "path": d} for d in damaged]
        (folder / "manifest.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    for name in ("npy_a", "npy_b", "bad_b"):
        (ws / name).mkdir()
        for i in range(2):
            np.save(ws / name / f"clip{i}.npy", rng.integers(0, 255, (10, 24, 24, 3), dtype=np.uint8))
    (ws / "bad_b" / "bad.gif").write_bytes(b"GIF89a" + rng.bytes(300))


def damage_cache(root: Path, how: str) -> None:
    caches = sorted((root / "data" / "cache").glob("circles-*.npz"))
    if not caches:
        raise RuntimeError("no circles cache to damage: the tiny run should have written one")
    for cache in caches:
        data = cache.read_bytes()
        if how == "cut_cache":
            cache.write_bytes(data[: len(data) // 2])
        elif how == "flip_cache":
            b = bytearray(data)
            mid = len(b) // 2
            b[mid:mid + 64] = bytes(255 - x for x in b[mid:mid + 64])
            cache.write_bytes(bytes(b))
        else:
            cache.with_suffix(".json").unlink(missing_ok=True)


def run_case(case: Case, ws: Path, run: Path, env: dict) -> dict:
    work = Path(tempfile.mkdtemp(dir=ws, prefix="case_"))
    if case.tags:  # a cache case runs where the tiny run left its cache
        work = run.parents[2]
        damage_cache(work, case.tags[0])
    out_dir = work / "out"
    argv = [a.format(ws=ws, run=run) for a in case.argv]
    if argv[0].endswith(".py"):
        argv = [str(ROOT / argv[0]), *argv[1:], f"hydra.run.dir={out_dir}"]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *argv], cwd=work, env={**env, "T2VLAB_ROOT": str(work)},
                            capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    lines = result.stderr.strip().splitlines()
    last = lines[-1] if lines else ""
    traceback = "Traceback" in result.stderr
    written = sorted({p.name for p in out_dir.rglob("*") if p.name in WRITTEN}) if out_dir.exists() else []
    if case.expect == "refused":
        ok = (result.returncode == 2 and last.startswith("error:") and case.needle in last and not traceback
              and not written)
    elif case.expect == "repaired":
        ok = result.returncode == 0 and case.needle in result.stdout + result.stderr and not traceback
    else:
        metrics = out_dir / "metrics.json"
        ok = (result.returncode == 0 and metrics.is_file() and case.needle in metrics.read_text()
              and not traceback)
    return {"case": case.name, "expect": case.expect, "ok": ok, "rc": result.returncode, "traceback": traceback,
            "written": written, "seconds": round(seconds, 1), "last": last[:300]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=None,
                        help="run the cases whose name holds this text (repeat for several)")
    parser.add_argument("--out", default=None, help="also write the table to this Markdown file")
    args = parser.parse_args()
    chosen = [c for c in cases() if args.only is None or any(text in c.name for text in args.only)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="bad_inputs_") as tmp:
        ws = Path(tmp)
        base = ws / "base"
        run = base / "outputs" / "debug_fast" / "run"
        base.mkdir()
        trained = subprocess.run([sys.executable, str(ROOT / "train.py"), *TINY, f"hydra.run.dir={run}"], cwd=base,
                                 env={**env, "T2VLAB_ROOT": str(base)}, capture_output=True, text=True, timeout=600)
        if trained.returncode != 0:
            print(trained.stderr[-3000:], file=sys.stderr)
            return 1
        write_fixtures(ws, run)
        rows = []
        for case in chosen:
            row = run_case(case, ws, run, env)
            rows.append(row)
            print(f"{'ok  ' if row['ok'] else 'FAIL'} {row['case']}: rc {row['rc']}, {row['last']}", flush=True)
    table = ["| case | expected | met | exit | last line |", "|---|---|---|---|---|"]
    table += [f"| {r['case']} | {r['expect']} | {'yes' if r['ok'] else 'NO'} | {r['rc']} | "
              f"{r['last'].replace('|', '/')} |" for r in rows]
    met = sum(r["ok"] for r in rows)
    summary = f"{met} of {len(rows)} bad inputs met as expected"
    print("\n".join(table) + f"\n\n{summary}")
    if args.out:
        Path(args.out).write_text("\n".join(table) + f"\n\n{summary}\n")
    return 0 if met == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
