"""Run train.py and evaluate.py as new processes without paying their imports each time.

A fresh `python train.py` spends 5-10 s importing torch, Lightning (which imports torchmetrics, transformers and
scipy) and the project before it reads its first argument; the entry-point tests start dozens. Here each run is
a process forked from a server that imported those once (multiprocessing's forkserver, one per test worker): a
process of its own, with its own argv, working folder, environment, exit code and output, which runs the script
as `python script.py` does (`__main__`, the script's folder first on sys.path, atexit handlers at the end). The
server runs nothing but imports, so no OpenMP or other thread exists when it forks.

What still needs a process started from nothing (the first import; joblib's workers, which a sweep forked from
here waits on for minutes or more) keeps `subprocess` (tests/test_cli.py, the local parallel launcher's test).
DDP's rank 0 is forked from here; Lightning starts rank 1 as a new process, as it does from a shell.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

PRELOAD = ["torch", "pytorch_lightning", "hydra", "t2vlab.tasks.train", "t2vlab.tasks.evaluate"]
_context = None


def _forkserver():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _main(argv: list[str], cwd: str, env: dict[str, str], out: str, err: str) -> None:
    """The child: `python argv[0] argv[1:]` with `env`, in `cwd`, stdout and stderr to the files."""
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    os.chdir(cwd)
    script = Path(argv[0]).resolve()
    sys.argv = [str(script), *argv[1:]]
    sys.path[:0] = [str(script.parent), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    if env.get("OMP_NUM_THREADS"):  # read by torch when it was imported, in the server
        import torch

        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        atexit._run_exitfuncs()  # a forked child leaves by os._exit, which skips them (W&B, logging)
        sys.stdout.flush()
        sys.stderr.flush()


def _start(argv: list, cwd: Path, env: dict[str, str], out: str, err: str) -> multiprocessing.Process:
    child = _forkserver().Process(target=_main, args=([str(a) for a in argv], str(cwd), dict(env), out, err))
    child.start()
    return child


def run_script(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Like subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True)."""
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        out.touch()
        err.touch()
        child = _start(argv, cwd, env, str(out), str(err))
        child.join(timeout)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired([sys.executable, *argv], timeout, out.read_text(), err.read_text())
        return subprocess.CompletedProcess([sys.executable, *argv], child.exitcode, out.read_text(),
                                           err.read_text())


def start_script(argv: list[str], cwd: Path, env: dict[str, str]) -> multiprocessing.Process:
    """Like subprocess.Popen([sys.executable, *argv], cwd=cwd, env=env) with its output discarded: the process,
    running (its pid, exitcode None until it ends)."""
    return _start(argv, cwd, env, os.devnull, os.devnull)
