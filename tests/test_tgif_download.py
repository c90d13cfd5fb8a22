"""download_gifs against a local HTTP server that serves good GIFs and every kind of broken one."""

from __future__ import annotations

import io
import re
import signal
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from t2vlab.data.tgif_download import FAILED_TSV, DownloadReport, download_gifs, gif_name

TIMEOUT = 1.0  # short, yet safe for a loaded machine; the slow route waits longer than this
SLOW_S = 2.5
MAX_BYTES = 4096


def make_gif(shade: int) -> bytes:
    frames = [Image.new("RGB", (8, 8), (shade, 40 * i, 255 - shade)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


GIF_A, GIF_B, GIF_C = make_gif(10), make_gif(120), make_gif(230)
HTML = b"<html><body>This GIF was removed</body></html>"
HUGE = b"GIF89a" + bytes(MAX_BYTES * 4) + b";"
GOOD_BODIES = {"a": GIF_A, "b": GIF_B, "c": GIF_C}


class Handler(BaseHTTPRequestHandler):
    """Route = first path component; the request count per full path picks what flaky routes do."""

    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with self.lock:
            self.counts[self.path] += 1
            number = self.counts[self.path]
        route = self.path.split("/")[1]
        try:
            getattr(self, "route_" + route.replace("-", "_"))(number)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout), as intended
            pass

    def send(self, body: bytes, content_type: str | None = "image/gif", length: int | None = None,
             status: int = 200) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def route_good(self, number: int) -> None:  # /good/<a|b|c>/<anything>.gif
        self.send(GOOD_BODIES[self.path.split("/")[2]])

    def route_octet(self, number: int) -> None:
        self.send(GIF_A, content_type="application/octet-stream; charset=binary")

    def route_no_type(self, number: int) -> None:
        self.send(GIF_B, content_type=None)

    def route_missing(self, number: int) -> None:
        self.send_error(404)

    def route_forbidden(self, number: int) -> None:
        self.send_error(403)

    def route_flaky503(self, number: int) -> None:
        if number <= 2:
            self.send_error(503)
        else:
            self.send(GIF_C)

    def route_flaky429(self, number: int) -> None:
        if number == 1:
            self.send_error(429)
        else:
            self.send(GIF_A)

    def route_slow(self, number: int) -> None:
        time.sleep(SLOW_S)
        self.send(GIF_A)

    def route_short(self, number: int) -> None:  # announces more than it sends, then closes
        self.send(GIF_A, length=len(GIF_A) + 100)

    def route_no_trailer(self, number: int) -> None:
        self.send(GIF_A[:-1])

    def route_page(self, number: int) -> None:
        self.send(HTML, content_type="text/html; charset=utf-8")

    def route_html_as_gif(self, number: int) -> None:
        self.send(HTML, content_type="image/gif")

    def route_huge(self, number: int) -> None:
        self.send(HUGE)

    def route_huge_unannounced(self, number: int) -> None:  # no Content-Length: the size shows only while reading
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.end_headers()
        self.wfile.write(HUGE)

    def route_interrupt(self, number: int) -> None:  # half a GIF, then Ctrl-C in the downloading process
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.send_header("Content-Length", str(len(GIF_A)))
        self.end_headers()
        self.wfile.write(GIF_A[:20])
        self.wfile.flush()
        time.sleep(0.2)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        time.sleep(0.3)
        self.wfile.write(GIF_A[20:])


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", Handler.counts
    httpd.shutdown()
    httpd.server_close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/refused.gif"


def no_sleep(seconds: float) -> None:
    pass


def test_each_failure_gets_its_reason_and_only_whole_gifs_are_kept(server, tmp_path):
    base, counts = server
    good = {f"{base}/good/a/x.gif": GIF_A, f"{base}/good/b/x.gif": GIF_B, f"{base}/good/c/y.gif": GIF_C,
            f"{base}/octet/z.gif": GIF_A, f"{base}/no-type/z.gif": GIF_B, f"{base}/flaky503/main.gif": GIF_C,
            f"{base}/flaky429/main.gif": GIF_A}
    bad = {f"{base}/missing/m.gif": "HTTP 404", f"{base}/forbidden/f.gif": "HTTP 403",
           f"{base}/slow/s.gif": "timeout", f"{base}/short/s.gif": "truncated", f"{base}/no-trailer/t.gif": "truncated",
           f"{base}/page/p.gif": "not a GIF (content type text/html)",
           f"{base}/html-as-gif/h.gif": "not a GIF (magic b'<html>')",
           f"{base}/huge/h.gif": f"too large (> {MAX_BYTES} bytes)",
           f"{base}/huge-unannounced/h.gif": f"too large (> {MAX_BYTES} bytes)",
           "ftp://example.com/a.gif": "invalid URL (scheme 'ftp')"}
    refused = closed_port_url()
    out = tmp_path / "gifs"
    start = time.monotonic()
    report = download_gifs([*good, *bad, refused], out, workers=4, timeout=TIMEOUT, retries=2, backoff=0.01,
                           max_bytes=MAX_BYTES, progress=False)
    assert time.monotonic() - start < 8  # ~3 s: the slow route's 3 attempts, in parallel with the rest

    assert sorted(report.downloaded) == sorted(good) and report.skipped == {}
    assert {url: report.failed[url] for url in bad} == bad
    assert report.failed[refused].startswith("connection error")
    for url, body in good.items():
        assert (out / gif_name(url)).read_bytes() == body
    # nothing else: no partial GIF, no temporary, no file for a failure
    assert sorted(p.name for p in out.iterdir()) == sorted([FAILED_TSV, *map(gif_name, good)])

    transient = ("/slow/s.gif", "/short/s.gif", "/flaky503/main.gif")
    assert {p: counts[p] for p in transient} == dict.fromkeys(transient, 3)  # 1 + retries
    assert counts["/flaky429/main.gif"] == 2
    for url in bad:
        if url.startswith(base) and url.removeprefix(base) not in transient:
            assert counts[url.removeprefix(base)] == 1, f"{url} is not transient and must not be retried"

    rows = [line.split("\t") for line in (out / FAILED_TSV).read_text().splitlines()]
    assert dict(rows) == report.failed and len(rows) == len(bad) + 1

    assert report.summary() == (
        f"downloaded 7, skipped 0, failed 11: 2 too large (> {MAX_BYTES} bytes), 2 truncated, 1 HTTP 403, 1 HTTP 404, "
        "1 connection error (ConnectionRefusedError), 1 invalid URL (scheme 'ftp'), 1 not a GIF (content type "
        "text/html), 1 not a GIF (magic b'<html>'), 1 timeout")


def test_a_second_run_skips_downloaded_gifs_without_asking_the_server(server, tmp_path):
    base, counts = server
    good = [f"{base}/good/a/rerun.gif", f"{base}/good/b/rerun.gif"]
    failing = f"{base}/missing/rerun.gif"
    out = tmp_path / "gifs"
    first = download_gifs([*good, failing], out, timeout=TIMEOUT, backoff=0.01, progress=True)  # the bar must not break
    assert sorted(first.downloaded) == sorted(good) and list(first.failed) == [failing]
    requests_before = {url: counts[url.removeprefix(base)] for url in [*good, failing]}

    second = download_gifs([*good, failing], out, timeout=TIMEOUT, backoff=0.01, progress=False)
    assert second.downloaded == [] and second.skipped == dict.fromkeys(good, "already downloaded")
    assert second.failed == {failing: "HTTP 404"}
    assert {url: counts[url.removeprefix(base)] for url in good} == {url: requests_before[url] for url in good}
    assert counts[failing.removeprefix(base)] == requests_before[failing] + 1  # failures are tried again
    assert second.summary() == "downloaded 0, skipped 2 (already downloaded), failed 1: 1 HTTP 404"


def test_transient_errors_are_retried_with_exponential_backoff(server, tmp_path):
    base, counts = server
    delays: list[float] = []
    url = f"{base}/flaky503/backoff.gif"
    report = download_gifs([url], tmp_path, workers=1, retries=3, backoff=0.5, progress=False, sleep=delays.append)
    assert report.downloaded == [url] and (tmp_path / gif_name(url)).read_bytes() == GIF_C
    assert delays == [0.5, 1.0] and counts["/flaky503/backoff.gif"] == 3

    given_up = f"{base}/flaky503/give-up.gif"
    report = download_gifs([given_up], tmp_path, retries=1, progress=False, sleep=no_sleep)
    assert report.failed == {given_up: "HTTP 503"} and counts["/flaky503/give-up.gif"] == 2
    assert not (tmp_path / gif_name(given_up)).exists()


@pytest.fixture
def default_sigint():
    """Ctrl-C raises KeyboardInterrupt, whatever an earlier test in this worker left installed (Lightning ignores
    SIGINT while a fit it interrupted shuts down)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_mid_download_leaves_no_partial_file_and_starts_nothing_new(server, tmp_path, default_sigint):
    base, counts = server
    (tmp_path / FAILED_TSV).write_text("old\tkept\n")
    interrupted, queued = f"{base}/interrupt/i.gif", f"{base}/good/a/queued.gif"
    # a long timeout: the route always finishes, and on a loaded machine a short one could expire before its Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        download_gifs([interrupted, queued], tmp_path, workers=1, timeout=30.0, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FAILED_TSV]  # no GIF, no temporary
    assert (tmp_path / FAILED_TSV).read_text() == "old\tkept\n"
    assert counts["/good/a/queued.gif"] == 0


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [("workers", 0, "dataset.download.workers=0 is invalid; allowed: >= 1"),
     ("timeout", 0.0, "dataset.download.timeout=0.0 is invalid; allowed: > 0"),
     ("retries", -1, "dataset.download.retries=-1 is invalid; allowed: >= 0"),
     ("backoff", -1.0, "dataset.download.backoff=-1.0 is invalid; allowed: >= 0"),
     ("max_bytes", 0, "dataset.download.max_bytes=0 is invalid; allowed: >= 1")],
)
def test_invalid_arguments_name_the_value_and_what_is_allowed(tmp_path, argument, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        download_gifs(["http://127.0.0.1:9/x.gif"], tmp_path / "gifs", progress=False, **{argument: value})
    assert not (tmp_path / "gifs").exists()  # refused before touching anything


def test_gif_names_are_stable_distinct_and_stay_inside_the_folder():
    tumblr = "https://38.media.tumblr.com/9f6c25cc350f12aa74a7dc386a5c4985/tumblr_mevmyaKtDf1rgvhr8o1_500.gif"
    assert gif_name(tumblr) == gif_name(tumblr)
    assert re.fullmatch(r"tumblr_mevmyaKtDf1rgvhr8o1_500-[0-9a-f]{8}\.gif", gif_name(tumblr))
    assert gif_name("http://a.com/x/clip.gif") != gif_name("http://a.com/y/clip.gif")
    # distinct even on a case-insensitive file system
    assert gif_name("http://a.com/x/clip.gif").lower() != gif_name("http://a.com/x/Clip.gif").lower()
    hostile = ["http://a.com/../../etc/passwd", "http://a.com/a%2F..%2F..%2Fb.gif", "http://a.com/..", "http://a.com/",
               "http://a.com/..\\..\\win.gif", "http://a.com/.gif", "http://a.com/é clip?.gif", "not a url",
               "http://[::1/x.gif", "http://a.com/" + "x" * 500 + ".gif", "http://a.com/-rf.gif"]
    names = [gif_name(url) for url in hostile]
    assert len(set(names)) == len(hostile)
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]*\.gif", name) and ".." not in name, name
        assert "/" not in name and "\\" not in name and len(name) <= 80


def test_summary_groups_reasons_most_frequent_first():
    report = DownloadReport(downloaded=["u1", "u2", "u3"], skipped={"u4": "already downloaded"},
                            failed={"f1": "timeout", "f2": "HTTP 404", "f3": "timeout"})
    assert report.summary() == "downloaded 3, skipped 1 (already downloaded), failed 3: 2 timeout, 1 HTTP 404"
    assert DownloadReport().summary() == "downloaded 0, skipped 0, failed 0"
