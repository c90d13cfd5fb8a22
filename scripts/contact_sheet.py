"""One picture of a run's samples: one clip per prompt, one row per prompt, every frame side by side.

    .venv/bin/python scripts/contact_sheet.py <run folder> <out.png> [--clip 1] [--scale 2]

Reads the GIFs the end-of-training evaluation wrote (`<run>/samples/evaluation/<prompt>_<clip>.gif`, clip numbers
as written there) and labels each row with its prompt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageSequence

LABEL_WIDTH = 230


def frames_of(gif: Path) -> list[Image.Image]:
    with Image.open(gif) as im:
        return [f.convert("RGB") for f in ImageSequence.Iterator(im)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--clip", type=int, default=1, help="which sample of each prompt (its number in the file name)")
    ap.add_argument("--scale", type=int, default=2, help="pixel upscaling of every frame (nearest)")
    args = ap.parse_args()
    folder = args.run / "samples" / "evaluation"
    gifs = sorted(folder.glob(f"*_{args.clip:02d}.gif"))
    if not gifs:
        sys.exit(f"error: no *_{args.clip:02d}.gif in {folder}; run the training to its end (it writes them) "
                 f"or pick another --clip")
    rows = [(g.stem.rsplit("_", 1)[0].replace("_", " "), frames_of(g)) for g in gifs]
    side = rows[0][1][0].size[0] * args.scale
    width = LABEL_WIDTH + side * max(len(f) for _, f in rows)
    sheet = Image.new("RGB", (width, side * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (prompt, frames) in enumerate(rows):
        draw.text((6, i * side + side // 2 - 6), prompt, fill="black")
        for j, frame in enumerate(frames):
            sheet.paste(frame.resize((side, side), Image.NEAREST), (LABEL_WIDTH + j * side, i * side))
        draw.line([(0, (i + 1) * side - 1), (width, (i + 1) * side - 1)], fill=(200, 200, 200))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"{len(rows)} prompts, {len(rows[0][1])} frames each -> {args.out}")


if __name__ == "__main__":
    main()
