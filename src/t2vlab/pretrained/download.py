"""Weights for a metric: a local file, or fetched once from a URL into torch's hub cache, where torchvision and
pytorch-fid keep them too.

Unlike torch.hub.load_state_dict_from_url this gives up after `timeout` seconds without data, so a machine
without internet learns at once that a metric is unavailable instead of hanging.
"""

from __future__ import annotations

import hashlib
import logging
import re
from http.client import HTTPException
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import urlopen

import torch

from t2vlab.evaluation.metrics.result import MetricUnavailable
from t2vlab.runtime.atomic import atomic_path

log = logging.getLogger(__name__)
HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")  # torch's convention: name-<sha256 prefix>.pth


def cached_path(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def cached_download(url: str, timeout: float = 30.0) -> Path:
    """The local copy of `url` (downloaded first if missing). Network errors propagate as OSError."""
    path = cached_path(url)
    if path.is_file():
        return path
    digest = hashlib.sha256()
    with urlopen(url, timeout=timeout) as response, atomic_path(path) as tmp:
        with open(tmp, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        expected = HASH_IN_NAME.search(path.name)
        if expected and not digest.hexdigest().startswith(expected.group(1)):
            # not every publisher follows torch's naming convention, so a mismatch is reported, not refused
            log.warning("%s downloaded with sha256 %s..., which does not start with the %s in its name", url,
                        digest.hexdigest()[:12], expected.group(1))
    return path


def weights_file(metric: str, path: str | None, url: str, how_to_enable: str, timeout: float = 30.0) -> Path:
    """`path` if given, else the cached download of `url`; MetricUnavailable when neither can be had."""
    if path is not None:
        if not Path(path).is_file():
            raise MetricUnavailable(metric, f"weights file {path} does not exist", how_to_enable)
        return Path(path)
    try:
        return cached_download(url, timeout)
    except (OSError, HTTPException) as e:
        reason = f"could not download {url} ({type(e).__name__}: {str(e)[:200]})"
        raise MetricUnavailable(metric, reason, how_to_enable) from None


def read_state_dict(metric: str, path: Path, how_to_enable: str) -> dict[str, torch.Tensor]:
    """A file's state dict (tensors only, nothing executed); MetricUnavailable when it holds none."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types; all mean the same here
        raise MetricUnavailable(metric, f"{path} cannot be read as a state dict ({type(e).__name__}: "
                                f"{str(e)[:200]})", how_to_enable) from None
    if not isinstance(state, dict):
        raise MetricUnavailable(metric, f"{path} holds a {type(state).__name__}, not a state dict", how_to_enable)
    return state
