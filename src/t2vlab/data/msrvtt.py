"""dataset=msrvtt: MSR-VTT (Xu et al. 2016), read from its published annotation JSON ("videos": video_id and
split per clip, "sentences": caption and video_id, 20 per clip) and its MP4s, in a folder or in the zip they
ship in (extracted once; no member may land outside the target folder). A captions override file (CSV of
id,caption) replaces the captions of the clips it names, for protocols that re-caption clips."""

from __future__ import annotations

import csv
import json
import logging
import random
import stat
import zipfile
from pathlib import Path, PurePosixPath

from t2vlab.data.clip_cache import VideoEntry
from t2vlab.data.real_videos import RealVideoDataModule
from t2vlab.runtime.atomic import atomic_path

log = logging.getLogger(__name__)

SPLITS = ("train", "validate", "test")
VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv")


def read_msrvtt_annotations(path: str | Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """-> (video_id -> split, video_id -> captions in sen_id order)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"dataset.annotations={path} is invalid; allowed: MSR-VTT's annotation JSON "
                         "(train_val_videodatainfo.json or test_videodatainfo.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        splits = {str(v["video_id"]): str(v["split"]) for v in data["videos"]}
        rows = sorted(data["sentences"], key=lambda s: (str(s["video_id"]), s.get("sen_id", 0)))
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"dataset.annotations={path} is not MSR-VTT's annotation format ({type(e).__name__}: {e}); "
                         "allowed: a JSON object with 'videos' [{video_id, split}] and 'sentences' "
                         "[{video_id, caption}]") from None
    captions: dict[str, list[str]] = {}
    for s in rows:
        captions.setdefault(str(s["video_id"]), []).append(str(s["caption"]).strip())
    return splits, captions


def read_captions_override(path: str | Path) -> dict[str, str]:
    """A CSV of id,caption (a header row `id,caption` is optional) -> {id: caption}."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"dataset.captions_override={path} is invalid; allowed: a CSV file of id,caption rows")
    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row or (n == 1 and [c.strip().lower() for c in row[:2]] == ["id", "caption"]):
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise ValueError(f"dataset.captions_override={path}: line {n} is {row!r}; allowed: id,caption")
            out[row[0].strip()] = row[1].strip()
    return out


def safe_extract(archive: str | Path, target: str | Path) -> Path:
    """Extract a zip into target once (a marker file records a finished extraction). Refuses, before writing
    anything, a member with an absolute path, a '..' part or a symbolic link: none may land outside target."""
    archive, target = Path(archive), Path(target)
    done = target / f".extracted-{archive.name}"
    if done.is_file():
        return target
    with zipfile.ZipFile(archive) as z:
        members = z.infolist()
        for m in members:
            parts = PurePosixPath(m.filename.replace("\\", "/")).parts
            is_link = stat.S_ISLNK(m.external_attr >> 16)
            if m.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]) or is_link:
                raise ValueError(f"{archive}: member {m.filename!r} would be written outside {target} "
                                 f"({'a symbolic link' if is_link else 'absolute or .. path'}); refusing to extract")
        for m in members:
            if m.is_dir():
                continue
            out = target / PurePosixPath(m.filename.replace("\\", "/"))
            with z.open(m) as src, atomic_path(out) as tmp:  # a crash leaves no half-extracted video
                tmp.write_bytes(src.read())
    with atomic_path(done) as tmp:
        tmp.write_text(f"{len(members)} members\n")
    return target


class MsrvttDataModule(RealVideoDataModule):
    name = "msrvtt"

    def __init__(self, annotations: str, videos: str, split: str = "train", captions_override: str | None = None,
                 extract_dir: str | None = None, ids: list[str] | None = None, **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f"dataset.split={split} is invalid; allowed: {', '.join(SPLITS)}")
        super().__init__(**kwargs)
        self.annotations, self.videos, self.split = Path(annotations), Path(videos), split
        self.captions_override, self.ids = captions_override, list(ids) if ids is not None else None
        self.extract_dir = Path(extract_dir) if extract_dir else self.videos.with_suffix("")
        self._parsed: tuple[dict[str, str], dict[str, list[str]]] | None = None

    def parsed(self) -> tuple[dict[str, str], dict[str, list[str]]]:
        if self._parsed is None:
            splits, captions = read_msrvtt_annotations(self.annotations)
            if self.captions_override:
                override = read_captions_override(self.captions_override)
                unknown = sorted(set(override) - set(splits))
                if unknown:
                    log.warning("captions override names %d clip(s) not in the annotations, e.g. %s", len(unknown),
                                unknown[:3])
                captions |= {k: [v] for k, v in override.items() if k in splits}
            self._parsed = splits, captions
        return self._parsed

    def check(self) -> None:
        super().check()
        if self.videos.suffix == ".zip":
            if not self.videos.is_file():
                raise ValueError(f"dataset.videos={self.videos} is invalid: no such file; allowed: MSR-VTT's video "
                                 "zip or a folder of its videos")
        else:
            self._video_folder()

    def prepare_data(self) -> None:
        if self.videos.suffix == ".zip":
            safe_extract(self.videos, self.extract_dir)

    def _video_folder(self) -> Path:
        folder = self.extract_dir if self.videos.suffix == ".zip" else self.videos
        if not folder.is_dir():
            hint = "run python prepare.py dataset=msrvtt to extract it" if self.videos.suffix == ".zip" else \
                "a folder of MSR-VTT videos (video<N>.mp4) or their zip"
            raise ValueError(f"dataset.videos={self.videos} is invalid: {folder} is not a folder; allowed: {hint}")
        return folder

    def entries(self) -> list[VideoEntry]:
        splits, _ = self.parsed()
        files = {p.stem: p for p in sorted(self._video_folder().rglob("*")) if p.suffix.lower() in VIDEO_SUFFIXES}
        ids = sorted(v for v, s in splits.items() if s == self.split and (self.ids is None or v in self.ids))
        if not ids:
            raise ValueError(f"dataset.split={self.split}: no clips of that split in {self.annotations}"
                             + (f" among ids {self.ids[:3]}..." if self.ids is not None else ""))
        random.Random(self.seed).shuffle(ids)
        missing = [v for v in ids if v not in files]
        if missing:
            log.warning("MSR-VTT %s: %d of %d videos are not in %s (e.g. %s); they are reported as missing",
                        self.split, len(missing), len(ids), self._video_folder(), missing[:3])
        return [VideoEntry(v, files.get(v, self._video_folder() / f"{v}.mp4")) for v in ids]

    def captions(self) -> dict[str, list[str]]:
        return self.parsed()[1]
