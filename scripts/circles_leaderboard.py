"""Train the leaderboard's entries for several seeds into fixed folders, then score them together.

    .venv/bin/python scripts/circles_leaderboard.py [--out outputs/leaderboard] [--seeds 0 1 2]
        [--entries gan splitter magvit keypoint_vae] [--dry-run] [-- OVERRIDE ...]

Each stage is a `train.py` process of its own, in `<out>/<entry>/<stage>/seed<s>`. A stage whose metrics.json
exists is left alone; one with checkpoints continues from its newest (`ckpt_path=<its folder>`); so the same
command after a crash, a Ctrl-C or a closed session goes on where it stopped. Frozen first stages are trained once,
with seed 0, and shared by every seed of their entry, as each family uses them: the Splitter's `circles_unclip`
backbone (exported into its stage folder, where the Splitter stages read it) and MAGVIT's tokenizer. Every
stage's config is composed before the first one trains, so a bad override is reported at once. Then
`evaluate.py protocol=circles_benchmark` scores every entry's runs into `<out>/scores` (its README-format table
is `<out>/scores/benchmark.md`). Overrides after `--` go to every training stage (e.g. `trainer.max_steps=10`).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = ("gan", "splitter", "magvit", "keypoint_vae")


@dataclass(frozen=True)
class Stage:
    """One training run: `train.py <overrides> seed=<seed> hydra.run.dir=<folder>`."""
    folder: Path
    overrides: tuple[str, ...]
    seed: int
    scored: bool = True   # False for a frozen first stage: not a leaderboard entry itself


def stages(out: Path, seeds: list[int], entries: list[str]) -> list[Stage]:
    """The runs of the chosen entries, in the order they must train (a shared first stage before its users)."""
    plan: list[Stage] = []
    for entry in entries:
        if entry == "gan":
            plan += [Stage(out / "gan" / "video_gan" / f"seed{s}", ("experiment=video_gan_circles",), s) for s in seeds]
        elif entry == "keypoint_vae":
            plan += [Stage(out / "keypoint_vae" / "keypoint_vae" / f"seed{s}",
                           ("experiment=keypoint_vae_circles", "dataset.settings.num_frames=16"), s) for s in seeds]
        elif entry == "splitter":
            backbone = out / "splitter" / "circles_unclip" / "seed0"
            plan.append(Stage(backbone, ("experiment=circles_unclip", f"model.export_dir={backbone / 'export'}"), 0,
                              scored=False))
            plan += [Stage(out / "splitter" / "splitter" / f"seed{s}",
                           ("experiment=splitter_circles_best", f"backbone.path={backbone / 'export'}"), s)
                     for s in seeds]
        elif entry == "magvit":
            tokenizer = out / "magvit" / "tokenizer" / "seed0"
            plan.append(Stage(tokenizer, ("experiment=magvit_tokenizer_circles_8x",), 0, scored=False))
            plan += [Stage(out / "magvit" / "transformer" / f"seed{s}",
                           ("experiment=magvit_circles_8x", f"model.tokenizer_ckpt={tokenizer}"), s) for s in seeds]
        else:
            raise ValueError(f"--entries {entry}: unknown entry; allowed: {', '.join(ENTRIES)}")
    return plan


def train_command(stage: Stage, extra: list[str], python: str = sys.executable) -> list[str] | None:
    """train.py's command line for a stage: None when it has finished, a resume when it has checkpoints."""
    if (stage.folder / "metrics.json").is_file():
        return None
    resume = [f"ckpt_path={stage.folder}"] if any((stage.folder / "checkpoints").glob("*.ckpt")) else []
    return [python, str(ROOT / "train.py"), *stage.overrides, f"seed={stage.seed}", "print_config=false", *extra,
            f"hydra.run.dir={stage.folder}", *resume]


def score_command(out: Path, plan: list[Stage], python: str = sys.executable) -> list[str]:
    runs = ",".join(str(s.folder) for s in plan if s.scored)
    return [python, str(ROOT / "evaluate.py"), "protocol=circles_benchmark", "seeds=[0]", f"benchmark=[{runs}]",
            f"hydra.run.dir={out / 'scores'}"]


def run_stage(command: list[str]) -> int:
    """Run one process to its end and return its exit code. On Ctrl-C the process has the same SIGINT and is
    saving its interrupted.ckpt: wait for it (subprocess.run would kill it after a quarter of a second)."""
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.wait()
        raise


def preflight(plan: list[Stage], extra: list[str]) -> str | None:
    """Compose every stage's config before any trains: a bad override fails in seconds, not after hours of the
    stages before it. The error text, or None."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from t2vlab.runtime.resolvers import register_resolvers
    from t2vlab.tasks.compose import compose_run

    register_resolvers()
    for stage in plan:
        try:
            compose_run("train", [*stage.overrides, f"seed={stage.seed}", *extra])
        except (HydraException, OmegaConfBaseException) as error:
            return f"the stage in {stage.folder} ({' '.join(stage.overrides)}) does not compose: {error}"
    return None


def main(argv: list[str] | None = None, run=run_stage) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "leaderboard")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--entries", nargs="+", default=list(ENTRIES), choices=ENTRIES)
    parser.add_argument("--dry-run", action="store_true", help="print the commands that would run, run nothing")
    parser.add_argument("overrides", nargs="*", help="after --: overrides for every training stage")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    plan = stages(out, args.seeds, args.entries)
    error = preflight(plan, args.overrides)
    if error:
        print(error, file=sys.stderr)
        return 2
    try:
        for stage in plan:
            command = train_command(stage, args.overrides)
            if command is None:
                print(f"done already: {stage.folder}", flush=True)
                continue
            print(shlex.join(command), flush=True)
            if not args.dry_run and run(command) != 0:
                print(f"stopped: the stage in {stage.folder} did not finish; the same command goes on from its "
                      "newest checkpoint", file=sys.stderr)
                return 1
        command = score_command(out, plan)
        print(shlex.join(command), flush=True)
        return 0 if args.dry_run else run(command)
    except KeyboardInterrupt:
        print("interrupted: the running stage saved its checkpoint; the same command goes on from it", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
