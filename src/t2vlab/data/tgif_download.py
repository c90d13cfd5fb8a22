"""Download TGIF's GIFs (one URL per clip in the published TSV) into a folder for the TGIF loader.

Web data is broken in every way, so each GIF is checked (HTTP status, content type, magic bytes, size, complete
body) and written atomically: a file named `gif_name(url)` in the folder is always a whole GIF. A rerun skips
those files and tries only the rest; the last run's failures are listed with their reasons in failed.tsv.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from t2vlab.runtime.atomic import atomic_path

USER_AGENT = "t2vlab-tgif-download/1.0 (research dataset download; urllib)"
GIF_CONTENT_TYPES = frozenset({"image/gif", "application/octet-stream", "binary/octet-stream"})
GIF_MAGICS = (b"GIF87a", b"GIF89a")
GIF_TRAILER = b"\x3b"
FAILED_TSV = "failed.tsv"
PARTIAL_SUFFIX = ".part"  # temporaries are not *.gif, so a crash never leaves something that looks like a GIF
ALREADY_DOWNLOADED = "already downloaded"
CHUNK_BYTES = 64 * 2**10
_UNSAFE_STEM_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def gif_name(url: str) -> str:
    """The file name of `url`'s GIF: `<safe basename stem>-<sha1[:8]>.gif`, or `<sha1[:16]>.gif` without a stem.

    Deterministic; the hash of the whole URL keeps URLs with the same basename apart. Only [A-Za-z0-9_-] and one
    '.gif', so the name never contains a separator or '..' and cannot leave the folder.
    """
    digest = hashlib.sha1(url.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()
    try:
        basename = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]
    except ValueError:  # e.g. a malformed IPv6 host
        basename = ""
    stem = basename[:-4] if basename.lower().endswith(".gif") else basename
    stem = _UNSAFE_STEM_CHARS.sub("_", stem).strip("_-")[:64]
    return f"{stem}-{digest[:8]}.gif" if stem else f"{digest[:16]}.gif"


@dataclass
class DownloadReport:
    """What one `download_gifs` run did with each URL; the dicts map url -> reason."""

    downloaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line, e.g. `downloaded 3, skipped 1 (already downloaded), failed 2: 1 HTTP 404, 1 timeout`."""
        line = f"downloaded {len(self.downloaded)}, skipped {len(self.skipped)}"
        if self.skipped:
            reasons = set(self.skipped.values())
            line += f" ({reasons.pop() if len(reasons) == 1 else _grouped(self.skipped.values())})"
        line += f", failed {len(self.failed)}"
        if self.failed:
            line += f": {_grouped(self.failed.values())}"
        return line


def _grouped(reasons: Iterable[str]) -> str:
    """`2 timeout, 1 HTTP 404`: most frequent first."""
    counts = sorted(Counter(reasons).items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count} {reason}" for reason, count in counts)


class _Failure(Exception):
    """A URL that cannot be downloaded (now); `transient` ones are retried."""

    def __init__(self, reason: str, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


@dataclass(frozen=True)
class _Settings:
    timeout: float
    retries: int
    backoff: float
    max_bytes: int
    sleep: Callable[[float], None]
    stop: threading.Event


def download_gifs(
    urls: list[str],
    out_dir: str | Path,
    *,
    workers: int = 8,
    timeout: float = 20.0,
    retries: int = 3,
    backoff: float = 1.0,
    max_bytes: int = 20 * 2**20,
    progress: bool = True,
    sleep: Callable[[float], None] | None = None,
) -> DownloadReport:
    """Download each URL's GIF to `out_dir / gif_name(url)`, skipping those already there; see the module doc.

    `timeout` is per connect and per read; transient failures (timeouts, connection errors, HTTP 5xx and 429)
    are retried `retries` times after `backoff * 2**attempt` seconds. `sleep` (default: wait that long, but wake
    on Ctrl-C) is for tests. Ctrl-C stops the workers, removes their temporaries and re-raises.
    """
    _check_arguments(workers, timeout, retries, backoff, max_bytes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    urls = list(dict.fromkeys(urls))
    stop = threading.Event()
    settings = _Settings(timeout, retries, backoff, max_bytes, sleep or stop.wait, stop)
    skipped = {url: ALREADY_DOWNLOADED for url in urls if (out_dir / gif_name(url)).exists()}
    todo = [url for url in urls if url not in skipped]
    outcome: dict[str, str | None] = {}
    with _progress_bar(progress) as bar, ThreadPoolExecutor(workers, thread_name_prefix="tgif-download") as pool:
        task = bar.add_task("TGIF GIFs", total=len(urls), completed=len(skipped), counts="")
        futures: dict[Future[str | None], str] = {}
        try:
            for url in todo:
                futures[pool.submit(_download, url, out_dir / gif_name(url), settings)] = url
            for future in as_completed(futures):
                outcome[futures[future]] = future.result()
                failures = sum(reason is not None for reason in outcome.values())
                counts = f"ok {len(outcome) - failures}  skipped {len(skipped)}  failed {failures}"
                bar.update(task, advance=1, counts=counts)
        except BaseException:  # Ctrl-C included: workers abandon their file (no partial GIF) and queued URLs
            stop.set()
            for future in futures:
                future.cancel()
            raise
    report = DownloadReport(
        downloaded=[url for url in todo if outcome[url] is None],
        skipped=skipped,
        failed={url: outcome[url] for url in todo if outcome[url] is not None},
    )
    _write_failed_tsv(out_dir / FAILED_TSV, report.failed)
    return report


def _check_arguments(workers: int, timeout: float, retries: int, backoff: float, max_bytes: int) -> None:
    if workers < 1:
        raise ValueError(f"dataset.download.workers={workers} is invalid; allowed: >= 1")
    if not timeout > 0:
        raise ValueError(f"dataset.download.timeout={timeout} is invalid; allowed: > 0 seconds")
    if retries < 0:
        raise ValueError(f"dataset.download.retries={retries} is invalid; allowed: >= 0")
    if not backoff >= 0:
        raise ValueError(f"dataset.download.backoff={backoff} is invalid; allowed: >= 0 seconds")
    if max_bytes < 1:
        raise ValueError(f"dataset.download.max_bytes={max_bytes} is invalid; allowed: >= 1")


def _progress_bar(enabled: bool) -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[counts]}"),
               TimeRemainingColumn())
    return Progress(*columns, disable=not enabled)


def _download(url: str, dest: Path, settings: _Settings) -> str | None:
    """Download with retries; None on success, else the reason of the last failure."""
    for attempt in range(settings.retries + 1):
        if settings.stop.is_set():
            return "interrupted"
        try:
            _download_once(url, dest, settings)
            return None
        except _Failure as failure:
            if not failure.transient or attempt == settings.retries or settings.stop.is_set():
                return failure.reason
        settings.sleep(settings.backoff * 2**attempt)
    raise AssertionError("unreachable")


def _download_once(url: str, dest: Path, settings: _Settings) -> None:
    _check_scheme(url)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "image/gif,*/*;q=0.8"})
    # the temporary is renamed to `dest` only if no check below raises; an error or Ctrl-C deletes it
    with atomic_path(dest, suffix=PARTIAL_SUFFIX) as tmp, _open(request, settings.timeout) as response:
        announced = _check_headers(response, settings.max_bytes)
        with tmp.open("wb") as out:
            _copy_checked_body(response, out, announced, settings)


def _check_scheme(url: str) -> None:
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https"):  # no file:// or ftp:// from a downloaded TSV
        raise _Failure(f"invalid URL (scheme {_clean(scheme)[:20]!r})")


def _open(request: urllib.request.Request, timeout: float) -> http.client.HTTPResponse:
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        raise _Failure(f"HTTP {err.code}", transient=err.code >= 500 or err.code == 429) from err
    except (OSError, http.client.HTTPException, ValueError) as err:
        raise _network_failure(err) from err


def _network_failure(err: BaseException) -> _Failure:
    if isinstance(err, urllib.error.URLError) and isinstance(err.reason, BaseException):
        err = err.reason
    if isinstance(err, TimeoutError):
        return _Failure("timeout", transient=True)
    if isinstance(err, http.client.IncompleteRead):
        return _Failure("truncated", transient=True)
    if isinstance(err, ValueError):  # http.client.InvalidURL, non-ASCII in the request line
        return _Failure("invalid URL", transient=False)
    detail = err.reason if isinstance(err, urllib.error.URLError) else type(err).__name__
    return _Failure(f"connection error ({detail})", transient=True)


def _check_headers(response: http.client.HTTPResponse, max_bytes: int) -> int | None:
    """Reject by Content-Type and Content-Length before reading the body; return the announced length."""
    content_type = response.headers.get("Content-Type")
    if content_type is not None:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type and media_type not in GIF_CONTENT_TYPES:
            raise _Failure(f"not a GIF (content type {_clean(media_type)[:60]})")
    announced = _content_length(response)
    if announced is not None and announced > max_bytes:
        raise _Failure(f"too large (> {max_bytes} bytes)")
    return announced


def _content_length(response: http.client.HTTPResponse) -> int | None:
    try:
        length = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return length if length >= 0 else None


def _copy_checked_body(response: http.client.HTTPResponse, out: BinaryIO, announced: int | None,
                       settings: _Settings) -> None:
    received, head, last = 0, b"", b""
    while chunk := _read(response):
        if settings.stop.is_set():
            raise _Failure("interrupted")
        received += len(chunk)
        if received > settings.max_bytes:
            raise _Failure(f"too large (> {settings.max_bytes} bytes)")
        if len(head) < len(GIF_MAGICS[0]):
            head = (head + chunk)[: len(GIF_MAGICS[0])]
            if len(head) == len(GIF_MAGICS[0]):  # stop a web page at its first bytes, not at its end
                _check_magic(head)
        out.write(chunk)
        last = chunk[-1:]
    if announced is not None and received < announced:
        # the connection dropped mid-body; transient, unlike a complete body without the trailer
        raise _Failure("truncated", transient=True)
    _check_magic(head)
    if last != GIF_TRAILER:
        raise _Failure("truncated")


def _read(response: http.client.HTTPResponse) -> bytes:
    try:
        return response.read1(CHUNK_BYTES)  # what has arrived, so the checks and Ctrl-C act early
    except (OSError, http.client.HTTPException) as err:
        raise _network_failure(err) from err


def _check_magic(head: bytes) -> None:
    if head not in GIF_MAGICS:
        raise _Failure(f"not a GIF (magic {head!r})")


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _write_failed_tsv(path: Path, failed: dict[str, str]) -> None:
    """url<TAB>reason per failure of this run (empty when none), so a rerun's file is never stale."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{_clean(url)}\t{_clean(reason)}\n" for url, reason in failed.items()),
                       encoding="utf-8")
