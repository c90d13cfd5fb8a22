"""Read a checkpoint named on the command line or found in a run folder, refusing a file that is not one (random
bytes, cut short, flipped bytes, a text file, a torch file of something else) before any work is done."""

from __future__ import annotations

import pickle
import zipfile
import zlib
from pathlib import Path

import torch

EXPECTED = "a Lightning checkpoint written by train.py (a torch zip file with state_dict and hyper_parameters)"
REQUIRED_KEYS = ("state_dict", "hyper_parameters", "pytorch-lightning_version")


def load_checkpoint(path: str | Path, given: str) -> dict:
    """The checkpoint's contents on the CPU, loaded with weights_only=True (tensors and plain containers only).

    `given` is the setting as the user typed it (`ckpt_path=last`, `run_dir=outputs/x/<time>`); a file that is not
    a readable Lightning checkpoint is a ValueError naming it, the file and what is expected.
    """
    path = Path(path)
    where = given if given.endswith(f"={path}") else f"{given}: {path}"
    problem = _damage(path)
    state = None
    if problem is None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            problem = ("it holds Python objects other than tensors and plain containers, which are not loaded"
                       if "Weights only load failed" in str(e) else f"torch cannot load it ({_first_line(e)})")
        except (RuntimeError, OSError, EOFError, ValueError) as e:
            problem = f"torch cannot load it ({_first_line(e)})"
    if problem is None:
        problem = _not_lightning(state)
    if problem is not None:
        raise ValueError(f"{where} is invalid: {problem}; allowed: {EXPECTED}")
    return state


def _damage(path: Path) -> str | None:
    """What is wrong with the file as a zip archive (torch's format since 1.6), checking every member's CRC:
    torch.load itself reads flipped bytes inside the weights without complaint."""
    if not path.is_file():
        return "no such file"
    if path.stat().st_size == 0:
        return "the file is empty"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile:
        return "not a zip file (cut short, overwritten, or not a torch file)"
    except (OSError, EOFError, ValueError, NotImplementedError, zlib.error) as e:
        return f"a damaged zip file ({_first_line(e)})"
    return f"damaged: {bad} inside it fails its CRC check" if bad is not None else None


def _not_lightning(state) -> str | None:
    if not isinstance(state, dict):
        return f"it is a torch file holding a {type(state).__name__}, not a checkpoint's dict"
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        keys = sorted(map(str, state))
        shown = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
        return f"it is a torch file without {', '.join(missing)} (its keys: {shown or 'none'})"
    if not isinstance(state["state_dict"], dict):
        return f"its state_dict is a {type(state['state_dict']).__name__}, not a dict of tensors"
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
