"""dataset=tgif: Tumblr GIFs with crowd-written descriptions (TGIF, Li et al. 2016), read from the published
TSV (`<GIF URL>\\t<description>`, one line per description; a GIF can have several) and the GIFs that
`python prepare.py dataset=tgif` downloads into `gif_dir` (file names from `tgif_download.gif_name`)."""

from __future__ import annotations

import logging
import random
from pathlib import Path

from t2vlab.data.clip_cache import VideoEntry
from t2vlab.data.real_videos import RealVideoDataModule
from t2vlab.data.tgif_download import download_gifs, gif_name

log = logging.getLogger(__name__)


def read_tgif_tsv(path: str | Path) -> dict[str, list[str]]:
    """URL -> its descriptions, in file order. Lines without a tab, URL or description are counted and
    skipped (the published file is clean; hand-made subsets often are not)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"dataset.tsv={path} is invalid; allowed: the TGIF TSV file (tgif-v1.0.tsv from "
                         "https://github.com/raingo/TGIF-Release/tree/master/data)")
    captions: dict[str, list[str]] = {}
    bad: list[int] = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        url, _, text = line.partition("\t")
        url, text = url.strip(), text.strip()
        if not url.startswith(("http://", "https://")) or not text:
            bad.append(n)
            continue
        captions.setdefault(url, []).append(text)
    if bad:
        log.warning("%s: skipped %d malformed line(s) (expected '<GIF URL>\\t<description>'), e.g. line %s",
                    path, len(bad), ", ".join(map(str, bad[:5])))
    if not captions:
        raise ValueError(f"dataset.tsv={path} holds no '<GIF URL>\\t<description>' lines")
    return captions


class TgifDataModule(RealVideoDataModule):
    name = "tgif"

    def __init__(self, tsv: str, gif_dir: str, download: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tsv, self.gif_dir = Path(tsv), Path(gif_dir)
        self.download = {"enabled": False, "limit": None, **(download or {})}
        self._captions: dict[str, list[str]] | None = None

    def by_url(self) -> dict[str, list[str]]:
        if self._captions is None:
            self._captions = read_tgif_tsv(self.tsv)
        return self._captions

    def _urls_in_order(self) -> list[str]:
        urls = list(self.by_url())
        random.Random(self.seed).shuffle(urls)  # downloads and decoding both follow it: the subset comes first
        return urls

    def check(self) -> None:
        super().check()
        if not self.download["enabled"]:
            self.entries()  # are any of the GIFs on disk?

    def prepare_data(self) -> None:
        """Download the GIFs (dataset.download.enabled=true; prepare.py sets it): the first `limit` URLs in the
        subset's order, skipping those already on disk."""
        if not self.download["enabled"]:
            return
        settings = {k: v for k, v in self.download.items() if k not in ("enabled", "limit")}
        urls = self._urls_in_order()[: self.download["limit"]]
        report = download_gifs(urls, self.gif_dir, progress=self.progress, **settings)
        log.info("TGIF download into %s: %s", self.gif_dir, report.summary())

    def entries(self) -> list[VideoEntry]:
        urls = self._urls_in_order()
        on_disk = {p.name for p in self.gif_dir.glob("*.gif")} if self.gif_dir.is_dir() else set()
        missing = sum(gif_name(u) not in on_disk for u in urls)
        if missing == len(urls):
            raise ValueError(f"dataset.gif_dir={self.gif_dir} holds none of the {len(urls)} GIFs of {self.tsv}; "
                             "download them first: python prepare.py dataset=tgif")
        if missing:
            log.info("TGIF: %d of %d GIFs are not downloaded; using the others", missing, len(urls))
        return [VideoEntry(Path(gif_name(u)).stem, self.gif_dir / gif_name(u)) for u in urls if gif_name(u) in on_disk]

    def captions(self) -> dict[str, list[str]]:
        return {Path(gif_name(u)).stem: texts for u, texts in self.by_url().items()}
