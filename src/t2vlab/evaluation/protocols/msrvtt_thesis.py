"""protocol=msrvtt_thesis: the Splitter thesis's evaluation on MSR-VTT.

31 test clips with their captions; the real clips are the centred square crop of half the short side, the
first 16 frames, at 256x256; generated clips are centre-square cropped and resized to the same size. FVD is
averaged over the first 10..16 frames, FID is per video (16 vs 16 frames) and averaged. The real clips come
from MSR-VTT in its published format (`msrvtt`: annotation JSON and videos; a captions override CSV names
the clips and their captions, as the thesis re-captioned its 31), preprocessed and cached by the MSR-VTT
loader; or from a folder with a manifest.jsonl ({"prompt": caption, "path": video, "id": optional}).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from t2vlab.data.video_decode import DamagedVideo
from t2vlab.data.video_io import read_video
from t2vlab.evaluation.protocols.base import Protocol
from t2vlab.evaluation.sampling import read_manifest


def centre_square(videos: torch.Tensor, fraction: float, size: int) -> torch.Tensor:
    """(N, T, C, H, W) -> (N, T, C, size, size): the centred square of `fraction` x the short side, resized."""
    n, t, c, h, w = videos.shape
    side = max(1, round(min(h, w) * fraction))
    top, left = (h - side) // 2, (w - side) // 2
    crop = videos[..., top:top + side, left:left + side].reshape(n * t, c, side, side)
    return F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=side > size).clamp(0, 1).reshape(n, t, c, size, size)


class MsrvttThesisProtocol(Protocol):
    name = "msrvtt_thesis"

    def __init__(self, real_videos: str | None = None, num_clips: int = 31, num_frames: int = 16,
                 size: int = 256, real_crop_fraction: float = 0.5, generated_crop_fraction: float = 1.0,
                 metrics: dict | None = None, msrvtt: dict | None = None) -> None:
        super().__init__(metrics)
        for key, value, ok, allowed in (
                ("num_clips", num_clips, num_clips >= 2, ">= 2"),
                ("num_frames", num_frames, num_frames >= 10, ">= 10 (FVD needs them)"),
                ("size", size, size >= 16, ">= 16"),
                ("real_crop_fraction", real_crop_fraction, 0 < real_crop_fraction <= 1, "(0, 1]"),
                ("generated_crop_fraction", generated_crop_fraction, 0 < generated_crop_fraction <= 1, "(0, 1]")):
            if not ok:
                raise ValueError(f"protocol.{key}={value} is invalid; allowed: {allowed}")
        self.real_videos, self.num_clips, self.num_frames, self.size = real_videos, num_clips, num_frames, size
        self.real_crop_fraction, self.generated_crop_fraction = real_crop_fraction, generated_crop_fraction
        self._reference: torch.Tensor
        if msrvtt and msrvtt.get("annotations"):
            self.real_videos = None  # the loader's cache holds them
            self._from_msrvtt(dict(msrvtt))
        elif real_videos:
            folder, rows = read_manifest(Path(real_videos), key="protocol.real_videos")
            if len(rows) < num_clips:
                raise ValueError(f"protocol.real_videos={real_videos} lists {len(rows)} clips; the protocol takes "
                                 f"num_clips={num_clips}")
            self.rows = rows[:num_clips]
            self.paths = [folder / r["path"] for r in self.rows]
            self._reference = self._read_reference()  # now, so a damaged real clip stops the run before any work
        else:
            raise ValueError("protocol.msrvtt.annotations=null and protocol.real_videos=null; allowed: MSR-VTT's "
                             "annotation JSON and videos (protocol.msrvtt.annotations=..., protocol.msrvtt.videos=...) "
                             "or a folder with manifest.jsonl of the test clips and their captions")
        self.train_prompts: list[str] = []
        self.heldout_prompts = [r["prompt"] for r in self.rows]

    def _from_msrvtt(self, cfg: dict) -> None:
        """The test clips through the MSR-VTT loader: the override's clips (or the first num_clips in the seed's
        order), their first caption after the override, the protocol's crop, length and size, cached."""
        from t2vlab.data.msrvtt import MsrvttDataModule, read_captions_override

        override = cfg.get("captions_override")
        ids = sorted(read_captions_override(override)) if override else None
        data = MsrvttDataModule(cfg["annotations"], cfg["videos"], split=cfg.get("split", "test"),
                                captions_override=override, ids=ids, captions="first", subset=self.num_clips,
                                seed=cfg.get("seed", 0), cache_dir=cfg.get("cache_dir", "data/cache"),
                                settings={"num_frames": self.num_frames, "sampling": "first", "image_size": self.size,
                                          "crop_fraction": self.real_crop_fraction, "min_frames": self.num_frames})
        data.check()
        data.prepare_data()
        data.setup()
        if len(data.train_set) < self.num_clips:
            raise ValueError(f"protocol.msrvtt: {len(data.train_set)} usable clips (skipped: "
                             f"{data.report['by_reason']}); the protocol takes num_clips={self.num_clips}")
        items = [data.train_set[i] for i in range(self.num_clips)]
        self.rows = [{"prompt": x["text"], "id": x["id"]} for x in items]
        self._reference = torch.stack([x["video"] for x in items])  # already cropped, cut and resized

    def requests(self) -> tuple[list[str], int]:
        return [r["prompt"] for r in self.rows], 1

    def reference(self, prompts: list[str], num_frames: int) -> torch.Tensor:
        """The real clips, in caption order; `prompts` must be those captions."""
        if prompts != [r["prompt"] for r in self.rows]:
            raise ValueError("the generated clips do not match the protocol's captions one to one")
        return self._reference  # decoded once, when the protocol is built

    def _read_reference(self) -> torch.Tensor:
        clips = []
        for path in self.paths:
            try:
                video = read_video(path)
            except DamagedVideo as e:
                why = f"{path.name} is damaged ({e})"
                raise ValueError(f"protocol.real_videos={self.real_videos}: {why}; allowed: readable videos, the "
                                 f"protocol scores against all {self.num_clips} real clips") from None
            if len(video) < self.num_frames:
                raise ValueError(f"{path} has {len(video)} frames; the protocol takes the first {self.num_frames}")
            clips.append(centre_square(video[None, :self.num_frames], self.real_crop_fraction, self.size)[0])
        return torch.stack(clips)

    def prepare_generated(self, videos: torch.Tensor) -> torch.Tensor:
        if videos.shape[1] < self.num_frames:
            raise ValueError(f"generated clips have {videos.shape[1]} frames; the protocol takes the first "
                             f"{self.num_frames}")
        return centre_square(videos[:, :self.num_frames], self.generated_crop_fraction, self.size)

    def match(self, rows: list[dict]) -> list[int]:
        """For generated clips listed in a manifest: the row index for each real clip, by id, else caption."""
        key = "id" if all("id" in r for r in rows) and all("id" in r for r in self.rows) else "prompt"
        index = {r[key]: i for i, r in enumerate(rows)}
        missing = [r[key] for r in self.rows if r[key] not in index]
        if missing:
            raise ValueError(f"the generated videos' manifest lacks {len(missing)} of the protocol's clips "
                             f"(matched by {key}), e.g. {missing[0]!r}")
        return [index[r[key]] for r in self.rows]

    def settings(self) -> dict:
        return {"real_videos": str(self.real_videos or "msrvtt loader"), "num_clips": self.num_clips,
                "num_frames": self.num_frames, "size": self.size, "real_crop_fraction": self.real_crop_fraction,
                "generated_crop_fraction": self.generated_crop_fraction}
