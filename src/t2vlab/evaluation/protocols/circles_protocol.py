"""protocol=circles: K clips per prompt (training and held-out prompts) against real clips of the same
prompts rendered with a seed the model never saw; motion accuracy, the learned classifier's prompt accuracy
and domain Fréchet distance, FVD and the image metrics."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import torch

from t2vlab.data.circles import CirclesSettings, motion_of, render, trajectories
from t2vlab.evaluation.protocols.base import Protocol


class CirclesProtocol(Protocol):
    name = "circles"

    def __init__(self, clips_per_prompt: int = 16, real_seed: int = 1_000_003, metrics: dict | None = None,
                 dataset: dict | None = None, num_frames: int | None = None) -> None:
        super().__init__(metrics)
        if clips_per_prompt < 1:
            raise ValueError(f"protocol.clips_per_prompt={clips_per_prompt} is invalid; allowed: >= 1")
        if num_frames is not None and num_frames < 2:
            raise ValueError(f"protocol.num_frames={num_frames} is invalid; allowed: null (the run's) or >= 2")
        self.fixed_frames = num_frames  # every run scored at this many frames, whatever it trained on
        self.clips_per_prompt, self.real_seed = clips_per_prompt, real_seed
        self.dataset_overrides = dict(dataset or {})  # for video folders, which carry no dataset config
        self.dataset: CirclesSettings | None = None
        self.train_prompts: list[str] = []
        self.heldout_prompts: list[str] = []

    def setup_from_run(self, run_cfg, datamodule, prompts: list[str] | None) -> None:
        if not hasattr(datamodule, "settings") or not isinstance(datamodule.settings, CirclesSettings):
            raise ValueError(f"protocol=circles is invalid for a run on dataset {run_cfg.dataset._target_}; "
                             "allowed: runs trained on dataset=circles")
        train, heldout = datamodule.prompts, datamodule.holdout_prompts
        if prompts:
            train, heldout = [p for p in prompts if p in train], [p for p in prompts if p not in train]
        self._setup(datamodule.settings, train, heldout)

    def setup_from_videos(self, rows: list[dict], videos: list[torch.Tensor]) -> None:
        inferred = {"num_frames": min(len(v) for v in videos), "image_size": videos[0].shape[-1]}
        try:
            settings = CirclesSettings(**{**inferred, **self.dataset_overrides})
        except ValueError as e:  # the settings the clips imply: name where they came from, not a key never set
            size, frames = inferred["image_size"], inferred["num_frames"]
            reason = str(e).replace("dataset.settings.", "protocol.dataset.")
            raise ValueError(f"videos= holds {size}x{size} clips of {frames} frames, scored against the circles data "
                             f"set's settings with that size: {reason}; give the settings the clips were drawn with "
                             "as +protocol.dataset.<key>=...") from None
        prompts = list(dict.fromkeys(r["prompt"] for r in rows))
        heldout = {r["prompt"] for r in rows if r.get("heldout")}
        self._setup(settings, [p for p in prompts if p not in heldout], [p for p in prompts if p in heldout])

    def _setup(self, settings: CirclesSettings, train_prompts: list[str], heldout_prompts: list[str]) -> None:
        for p in [*train_prompts, *heldout_prompts]:
            motion_of(p)  # an unknown prompt is refused here, before any work
        self.num_frames = self.fixed_frames or settings.num_frames
        if settings.num_frames != self.num_frames:  # the scorer's limits and the classifier at the frames scored
            settings = replace(settings, num_frames=self.num_frames)
        self.dataset, self.train_prompts, self.heldout_prompts = settings, train_prompts, heldout_prompts

    def load_context(self) -> dict:
        return {"settings": self.dataset}  # the classifier learns from clips of this dataset setting

    def requests(self) -> tuple[list[str], int]:
        return list(dict.fromkeys([*self.train_prompts, *self.heldout_prompts])), self.clips_per_prompt

    def reference(self, prompts: list[str], num_frames: int) -> torch.Tensor:
        """Real clips, one per entry of `prompts` and in its order, from the protocol's own seed."""
        s = CirclesSettings(**{**asdict(self.dataset), "num_frames": num_frames, "num_videos": len(prompts),
                               "seed": self.real_seed})
        rng = np.random.default_rng(self.real_seed)
        cx, cy, rad = trajectories([motion_of(p) for p in prompts], s, rng)
        clips = render(cx, cy, rad, rng.integers(0, len(s.colors), size=len(prompts)), s)
        return torch.from_numpy(clips).permute(0, 1, 4, 2, 3).float() / 255

    def settings(self) -> dict:
        return {"clips_per_prompt": self.clips_per_prompt, "real_seed": self.real_seed,
                "train_prompts": self.train_prompts, "heldout_prompts": self.heldout_prompts,
                "dataset": asdict(self.dataset) if self.dataset else None}
