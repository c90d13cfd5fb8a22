"""Preprocessing throughput for real video data sets on this machine: MP4 clips decoded, sampled (first 16
frames), centre-cropped and resized to 256x256 into the preprocessing cache, in clips per second; then the
same build again, which must be a cache hit (nothing decoded).

    .venv/bin/python bench/video_preprocess.py [--clips 48] [--frames 48] [--width 480 --height 360]

The source clips are generated MP4s (H.264, noise plus a moving square, so that they compress like real
footage rather than flat colour), written before timing. Results go to bench/results/video_preprocess.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from video_fixtures import moving_square, write_mp4  # noqa: E402

from t2vlab.data.clip_cache import ClipCache, VideoEntry  # noqa: E402
from t2vlab.data.video_preprocess import VideoSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--frames", type=int, default=48, help="frames per source clip (25 fps)")
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--workers", type=int, default=None, help="decoding threads (default: min(4, cores))")
    args = parser.parse_args()
    settings = VideoSettings(num_frames=16, sampling="first", image_size=256, crop_fraction=1.0)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        entries = [VideoEntry(f"video{i}", write_mp4(src / f"video{i}.mp4", moving_square(
            args.frames, args.height, args.width, seed=i), fps=25)) for i in range(args.clips)]
        cache = ClipCache(Path(tmp) / "cache", "bench", entries, settings, shard_size=16, workers=args.workers)
        first = cache.build(progress=False)
        second = ClipCache(Path(tmp) / "cache", "bench", entries, settings, shard_size=16,
                           workers=args.workers).build(progress=False)
    result = {"machine": platform.processor() or platform.machine(), "clips": args.clips,
              "source": f"{args.width}x{args.height}, {args.frames} frames, H.264", "output": "16 x 256x256",
              "workers": cache.workers, "first_pass_s": first["seconds"], "clips_per_s": args.clips / first["seconds"],
              "second_pass_s": second["seconds"], "second_pass_decoded_files": second["decoded_files"]}
    print(f"first pass: {args.clips} MP4 clips ({result['source']}) -> {result['output']} in {first['seconds']:.1f} s: "
          f"{result['clips_per_s']:.1f} clips/s with {cache.workers} decoding threads")
    print(f"second pass: {second['seconds']:.2f} s, {second['decoded_files']} files decoded (cache hit)")
    out = ROOT / "bench" / "results" / "video_preprocess.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
