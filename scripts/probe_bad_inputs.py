#!/usr/bin/env python
"""Run issue #14's hostile inputs and faults against a reidviewer checkout and classify each outcome.

Every probed command runs in a fresh process of the checkout given by ``--repo``
(``PYTHONPATH=REPO python -m reidviewer ...``, or ``python -c SNIPPET`` for what only the library
does, such as annotation imports), so the same probe can be pointed at an old commit (a
``git worktree``) and at today's tree::

    git worktree add /tmp/base 4a1961a
    OMP_NUM_THREADS=1 python scripts/probe_bad_inputs.py --repo /tmp/base --json /tmp/probe_before.json
    OMP_NUM_THREADS=1 python scripts/probe_bad_inputs.py --repo . --json /tmp/probe_after.json

Fixtures: data sets (a tiny SynthWalk set, PRID-2011 and iLIDS-VID layouts, non-UTF-8 folder
names) and hostile files (a FIFO, a 1×1 frame, a 6000×6000 frame, a pickle) are made by *this*
script's checkout; the project's own formats (checkpoints, finished training runs, annotation
exports) are made by the probed checkout, since an older one may not read a newer one's files.
Speed-only training options the probed checkout lacks (``--ids-per-batch``, ``--threads``, ...)
are left out of its command lines; a probed option it lacks counts as it comes out.

Verdicts:

* ``clear error``: exit status not 0, no traceback, the last line of stderr is a one-line message
  that names what the case expects (the file, folder or option at fault).
* ``handled``: exit status as expected (0, or 130 after SIGINT) and the safe behaviour checked
  (the input worked, the run was kept, the files went where asked).
* ``unclear``: a one-line error that does not name the file/option at fault, or that comes
  after a leaked warning (the issue's "Unclear" list).
* ``refused``: a valid input refused with a one-line error (the issue's "valid checkpoints refused").
* ``traceback``: a Python traceback.
* ``hang``: still running at the case's timeout (killed).
* ``accepted``: exit status 0 where the input should have been refused, or the behaviour is not
  the safe one (a run overwritten, an untrained checkpoint written, a stopped run exiting 0).
* ``crash``: killed by a signal, or out of memory (MemoryError, bad_alloc, OpenCV's "Insufficient
  memory", ...).
* ``skipped``: the case cannot be set up here (e.g. a read-only folder when running as root
  without ``mount``).

Some cases need root for a real read-only or full file system (a small ``tmpfs`` mount, removed
afterwards); without it the full disk is emulated with ``RLIMIT_FSIZE`` and the read-only
workspace with ``chmod``.

Options: ``--repo PATH`` (default: this checkout), ``--only SUBSTR`` (repeatable), ``--json OUT``,
``--list``, ``--keep`` (keep the work folder), ``--work DIR``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OWN_REPO = Path(__file__).resolve().parents[1]
VERDICTS = ("clear error", "handled", "unclear", "refused", "traceback", "hang", "accepted", "crash", "skipped")
#: Markers of memory exhaustion in a last line (raw library messages, not the project's own words).
MEMORY_MARKERS = ("MemoryError", "bad_alloc", "Insufficient memory", "Unable to allocate", "Failed to allocate",
                  "Cannot allocate memory", "can't allocate memory", "out of memory")
GiB = 1 << 30


@dataclass
class Result:
    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


@dataclass
class Plan:
    """One probed command and what its outcome should be.

    Attributes:
        argv: arguments after the python executable (``["-m", "reidviewer", ...]`` or ``["-c", src, ...]``).
        expect: ``"refuse"`` (a one-line error is right) or ``"accept"`` (it should work).
        names: strings the one-line error must contain (the file, folder or option at fault).
        forbid: strings that must not appear anywhere in stderr (e.g. a leaked warning).
        check: for an exit with ``ok_rc``: ``(safe, note)``.
        ok_rc: the exit status of the safe outcome (130 for a run stopped by SIGINT).
        timeout: seconds before the case counts as a hang.
        memory: address-space limit in bytes (``RLIMIT_AS``).
        file_size: file-size limit in bytes (``RLIMIT_FSIZE``: a full disk without ``mount``).
        interrupt: ``wait(proc) -> None`` that sends the process a signal once it is ready.
        env: extra environment variables.
        skip: why the case cannot run here.
        note: what the fixture is (shown in the JSON).
    """

    argv: list[str]
    expect: str = "refuse"
    names: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()
    check: Callable[[Result], tuple[bool, str]] | None = None
    ok_rc: int = 0
    timeout: float = 120.0
    memory: int | None = 8 * GiB
    file_size: int | None = None
    interrupt: Callable[[subprocess.Popen], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    skip: str | None = None
    note: str = ""


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def exception_line(stderr: str) -> str:
    """The ``Type: message`` line of the last traceback in ``stderr`` (its first unindented line
    after the frames), or ""."""
    at = stderr.rfind("Traceback (most recent call last):")
    if at < 0:
        return ""
    for line in stderr[at:].splitlines()[1:]:
        if line.strip() and not line[:1].isspace():
            return line.strip()
    return ""


def shown_line(res: Result) -> str:
    """The line the table shows: the exception of a traceback, else the last line of stderr
    (of stdout when stderr is empty)."""
    return exception_line(res.stderr) or last_line(res.stderr) or last_line(res.stdout)


def classify(plan: Plan, res: Result) -> tuple[str, str]:
    """``(verdict, note)`` of one outcome (see the module docstring)."""
    if plan.skip:
        return "skipped", plan.skip
    if res.timed_out:
        return "hang", f"still running after {plan.timeout:.0f} s"
    assert res.rc is not None
    if res.rc < 0:
        return "crash", f"killed by {signal.Signals(-res.rc).name}"
    last = last_line(res.stderr) or last_line(res.stdout)
    if res.rc != 0 and any(m in last or m in exception_line(res.stderr) for m in MEMORY_MARKERS):
        return "crash", "out of memory"
    if "Traceback (most recent call last)" in res.stderr:
        return "traceback", ""
    if res.rc == plan.ok_rc:
        if plan.check is not None:
            safe, note = plan.check(res)
        else:
            safe, note = plan.expect == "accept", ("" if plan.expect == "accept" else "exit 0")
        return ("handled" if safe else "accepted"), note
    if res.rc == 0:
        return "accepted", f"exit 0 (expected {plan.ok_rc})"
    if plan.expect == "accept":
        return "refused", f"exit {res.rc}"
    missing = [n for n in plan.names if n not in last]
    leaked = [f for f in plan.forbid if f in res.stderr]
    if not last:
        return "unclear", f"exit {res.rc} with no message"
    if missing or leaked:
        return "unclear", "; ".join(([f"does not name {', '.join(map(repr, missing))}"] if missing else [])
                                    + ([f"stderr shows {', '.join(map(repr, leaked))}"] if leaked else []))
    return "clear error", f"exit {res.rc}"


# ------------------------------------------------------------------------------------- runner


class Probe:
    def __init__(self, repo: Path, work: Path, python: str) -> None:
        self.repo = repo.resolve()
        self.work = work
        self.python = python
        self.mounts: list[Path] = []
        self._cache: dict[str, Any] = {}
        self.case_dir = work

    # -- processes --------------------------------------------------------------------

    def env(self, repo: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "REIDVIEWER_WORKSPACE")}
        env.update(PYTHONPATH=str(repo or self.repo), PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1",
                   QT_QPA_PLATFORM="offscreen", LC_ALL="C.UTF-8", PYTHONUNBUFFERED="1",
                   REIDVIEWER_WORKSPACE=str(self.case_dir / "default-workspace"))
        env.setdefault("OMP_NUM_THREADS", "1")
        env.update(extra or {})
        return env

    def run(self, plan: Plan, repo: Path | None = None) -> Result:
        def limits() -> None:
            if plan.memory:
                resource.setrlimit(resource.RLIMIT_AS, (plan.memory, plan.memory))
            if plan.file_size:
                resource.setrlimit(resource.RLIMIT_FSIZE, (plan.file_size, plan.file_size))

        t0 = time.monotonic()
        proc = subprocess.Popen([self.python, *plan.argv], cwd=self.case_dir, env=self.env(repo, plan.env),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, errors="replace", start_new_session=True, preexec_fn=limits)
        if plan.interrupt is not None:
            plan.interrupt(proc)
        try:
            out, err = proc.communicate(timeout=max(1.0, plan.timeout - (time.monotonic() - t0)))
            return Result(proc.returncode, out, err, time.monotonic() - t0)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the session this probe started for the case
            except ProcessLookupError:
                pass
            out, err = proc.communicate()
            return Result(proc.returncode, out, err, time.monotonic() - t0, timed_out=True)

    def fixture(self, argv: list[str], repo: Path | None = None, timeout: float = 300) -> Result:
        """Run a fixture-making command; it must succeed."""
        saved, self.case_dir = self.case_dir, self.work
        try:
            res = self.run(Plan(argv, timeout=timeout, memory=None), repo)
        finally:
            self.case_dir = saved
        if res.rc != 0:
            raise RuntimeError(f"fixture command failed ({res.rc}): {' '.join(argv[:6])}...\n{res.stderr[-3000:]}")
        return res

    def cli(self, *args: str) -> list[str]:
        return ["-m", "reidviewer", *args]

    # -- mounts -----------------------------------------------------------------------

    def tmpfs(self, path: Path, size: str, read_only: bool = False) -> bool:
        """Mount a small tmpfs at ``path`` (root only); False if that is not possible."""
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0 or not shutil.which("mount"):
            return False
        opts = f"size={size},mode=0777" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "reidviewer-probe", str(path)],
                              capture_output=True)
        if done.returncode != 0:
            return False
        self.mounts.append(path)
        return True

    def unmount_all(self) -> None:
        for path in reversed(self.mounts):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(path)], capture_output=True)
        self.mounts.clear()

    # -- fixtures ---------------------------------------------------------------------

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def synth(self) -> Path:
        """A tiny SynthWalk set (iLIDS-VID layout, 8 persons, 32×16 frames), made by this checkout."""
        def make() -> Path:
            out = self.work / "fixtures" / "synth"
            self.fixture(self.cli("synth", str(out), "--ids", "8", "--size", "32x16", "--min-len", "6",
                                  "--max-len", "10", "--workers", "1", "--seed", "4"), repo=OWN_REPO)
            return out
        return self.once("synth", make)

    def synth_copy(self) -> Path:
        target = self.case_dir / "set"
        shutil.copytree(self.synth, target)
        return target

    @property
    def train_options(self) -> set[str]:
        def make() -> set[str]:
            res = self.fixture(self.cli("train", "--help"))
            return set(re.findall(r"--[a-z][a-z0-9-]*", res.stdout))
        return self.once("train-options", make)

    @property
    def checkpoints(self) -> dict[str, Any]:
        """Checkpoints written by the probed checkout: ``rand`` (RAN K=3, 3 classes), ``rnn-150``
        and ``rnn-0`` (header lengths the old sniff took for pickle opcodes), a pickle and a
        ``torch.save`` zip; with each weights file's header length."""
        def make() -> dict[str, Any]:
            out = self.work / "fixtures" / "checkpoints"
            src = textwrap.dedent("""
                import json, pickle, struct, sys, torch
                from reidviewer.model.checkpoint import save_checkpoint
                from reidviewer.model.config import ModelConfig
                from reidviewer.model.network import build_model
                out = sys.argv[1]
                specs = {"rand": dict(head="ran", iterations=3, num_classes=3),
                         "rnn-150": dict(head="rnn", num_classes=150), "rnn-0": dict(head="rnn", num_classes=0)}
                lengths = {}
                for name, kw in specs.items():
                    torch.manual_seed(0)
                    config = ModelConfig(**kw)
                    path = save_checkpoint(f"{out}/{name}", build_model(config), config, {"note": "probe"})
                    lengths[name] = struct.unpack("<Q", open(path, "rb").read(8))[0]
                open(f"{out}/pickle.bin", "wb").write(pickle.dumps({"weights": list(range(100))}, protocol=2))
                torch.save({"w": torch.zeros(3)}, f"{out}/zip.bin")
                print(json.dumps(lengths))
            """)
            out.mkdir(parents=True, exist_ok=True)
            res = self.fixture(["-c", src, str(out)])
            return {"dir": out, "lengths": json.loads(res.stdout.strip().splitlines()[-1])}
        return self.once("checkpoints", make)

    def checkpoint_copy(self, name: str, as_name: str | None = None) -> Path:
        """A copy of fixture checkpoint ``name`` in the case folder; returns its weights path."""
        src = self.checkpoints["dir"]
        as_name = as_name or name
        shutil.copy(src / f"{name}.safetensors", self.case_dir / f"{as_name}.safetensors")
        shutil.copy(src / f"{name}.json", self.case_dir / f"{as_name}.json")
        return self.case_dir / f"{as_name}.safetensors"

    def train_argv(self, ws: Path, out: str, *extra: str, recipe: str | None = None,
                   root: Path | None = None) -> list[str]:
        """``train`` on the tiny set with the speed options the probed checkout has."""
        given = {e.split("=")[0] for e in extra if e.startswith("--")}
        argv = ["train", "--root", str(root or self.synth), "--workspace", str(ws), "--out", out]
        for option, value in (("--ids-per-batch", "2"), ("--tracklets-per-id", "2"), ("--seq-len", "4"),
                              ("--eval-every", "0"), ("--threads", "1")):
            if option in self.train_options and option not in given:
                argv += [option, value]
        if recipe and "--recipe" in self.train_options:
            argv += ["--recipe", recipe]
        return self.cli(*argv, *extra)

    @property
    def finished_run(self) -> dict[str, Any]:
        """A workspace holding the finished 2-epoch run ``done``, trained by the probed checkout."""
        def make() -> dict[str, Any]:
            ws = self.work / "fixtures" / "finished-ws"
            res = self.fixture(self.train_argv(ws, "done", "--epochs", "2"))
            return {"ws": ws, "result": res}
        return self.once("finished", make)

    def finished_copy(self) -> Path:
        target = self.case_dir / "ws"
        shutil.copytree(self.finished_run["ws"], target)
        return target

    def evaluate(self, root: Path, checkpoint: Path, ws: Path | None = None) -> list[str]:
        return self.cli("evaluate", "--root", str(root), "--checkpoint", str(checkpoint),
                        "--workspace", str(ws or self.case_dir / "ws"))


# -------------------------------------------------------------------------------------- cases

CASES: dict[str, tuple[str, Callable[[Probe], Plan]]] = {}


def case(name: str, group: str) -> Callable:
    def deco(fn: Callable[[Probe], Plan]) -> Callable[[Probe], Plan]:
        CASES[name] = (group, fn)
        return fn
    return deco


def metrics_printed(res: Result) -> tuple[bool, str]:
    ok = "mAP" in res.stdout
    return ok, "metrics printed" if ok else "exit 0 without metrics"


# ---- checkpoints


PICKLE_OPCODES = {0x80: "PROTO", 0x28: "MARK", 0x7D: "EMPTY_DICT", 0x5D: "EMPTY_LIST", 0x63: "GLOBAL"}


def _opcode_checkpoint(p: Probe, name: str) -> Plan:
    weights = p.checkpoint_copy(name)
    length = p.checkpoints["lengths"][name]
    low = PICKLE_OPCODES.get(length % 256, "not an opcode")
    return Plan(p.evaluate(p.synth, weights), expect="accept", check=metrics_printed, timeout=120,
                note=f"header length {length} (low byte {length % 256:#x}: {low})")


@case("ckpt/rnn-150-classes (header length byte = pickle opcode)", "checkpoints")
def _(p: Probe) -> Plan:
    return _opcode_checkpoint(p, "rnn-150")


@case("ckpt/rnn-0-classes (header length byte = pickle opcode)", "checkpoints")
def _(p: Probe) -> Plan:
    return _opcode_checkpoint(p, "rnn-0")


@case("ckpt/real pickle renamed .safetensors", "checkpoints")
def _(p: Probe) -> Plan:
    weights = p.checkpoint_copy("rand", "evil")
    shutil.copy(p.checkpoints["dir"] / "pickle.bin", weights)
    return Plan(p.evaluate(p.synth, weights), names=("evil.safetensors", "pickle"))


@case("ckpt/torch.save zip renamed .safetensors", "checkpoints")
def _(p: Probe) -> Plan:
    weights = p.checkpoint_copy("rand", "evil")
    shutil.copy(p.checkpoints["dir"] / "zip.bin", weights)
    return Plan(p.evaluate(p.synth, weights), names=("evil.safetensors",))


@case("ckpt/truncated .safetensors (half the file)", "checkpoints")
def _(p: Probe) -> Plan:
    weights = p.checkpoint_copy("rand", "cut")
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    return Plan(p.evaluate(p.synth, weights), names=("cut.safetensors",))


@case("ckpt/.safetensors of 5 bytes", "checkpoints")
def _(p: Probe) -> Plan:
    weights = p.checkpoint_copy("rand", "tiny")
    weights.write_bytes(b"\x10\x00\x00\x00\x00")
    return Plan(p.evaluate(p.synth, weights), names=("tiny.safetensors",))


def _json_number(p: Probe, field_name: str, raw: str, timeout: float = 60) -> Plan:
    weights = p.checkpoint_copy("rand", "odd")
    meta = weights.with_suffix(".json")
    doc = json.loads(meta.read_text())
    doc["architecture"][field_name] = "@@VALUE@@"
    meta.write_text(json.dumps(doc).replace('"@@VALUE@@"', raw))
    return Plan(p.evaluate(p.synth, weights), names=(field_name,), timeout=timeout)


@case('ckpt/JSON "iterations": 1000000000', "checkpoints")
def _(p: Probe) -> Plan:
    return _json_number(p, "iterations", "1000000000", timeout=45)


@case('ckpt/JSON "iterations": 1e400', "checkpoints")
def _(p: Probe) -> Plan:
    return _json_number(p, "iterations", "1e400")


@case('ckpt/JSON "num_classes": 10**29', "checkpoints")
def _(p: Probe) -> Plan:
    return _json_number(p, "num_classes", str(10**29))


@case('ckpt/JSON "hidden_dim": 10**11', "checkpoints")
def _(p: Probe) -> Plan:
    return _json_number(p, "hidden_dim", str(10**11))


# ---- training runs


def _run_snapshot(run: Path) -> dict[str, tuple[int, int, int]]:
    return {str(f.relative_to(run)): (f.stat().st_ino, f.stat().st_size, f.stat().st_mtime_ns)
            for f in sorted(run.rglob("*")) if f.is_file()}


@case("train/--out over a finished run", "training")
def _(p: Probe) -> Plan:
    ws = p.finished_copy()
    run = ws / "runs" / "done"
    before = _run_snapshot(run)

    def kept(res: Result) -> tuple[bool, str]:
        after = _run_snapshot(run) if run.is_dir() else {}
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        return (not changed), ("run kept" if not changed else f"run replaced: {', '.join(changed[:4])} changed")

    return Plan(p.train_argv(ws, "done", "--epochs", "1", "--seed", "7"), check=kept, timeout=180,
                names=("done",))


@case("train/--resume with a truncated last.safetensors", "training")
def _(p: Probe) -> Plan:
    ws = p.finished_copy()
    last = ws / "runs" / "done" / "last.safetensors"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    return Plan(p.train_argv(ws, "done", "--resume", "--epochs", "3"), names=("last.safetensors",), timeout=180)


@case("train/--resume with a garbled state.json", "training")
def _(p: Probe) -> Plan:
    ws = p.finished_copy()
    (ws / "runs" / "done" / "state.json").write_text('{"position": {"epoch": 2,\n')
    return Plan(p.train_argv(ws, "done", "--resume", "--epochs", "3"), names=("state.json",), timeout=180)


def _setting(p: Probe, option: str, value: str, epochs: bool = True) -> Plan:
    ws = p.case_dir / "ws"
    extra = [f"{option}={value}"] + (["--epochs", "1"] if epochs else [])
    return Plan(p.train_argv(ws, "x", *extra, recipe="paper"), names=(option,), timeout=180)


@case("train/--pairs-per-step 0", "training")
def _(p: Probe) -> Plan:
    return _setting(p, "--pairs-per-step", "0")


@case("train/--epochs -1", "training")
def _(p: Probe) -> Plan:
    return _setting(p, "--epochs", "-1", epochs=False)


@case("train/--lr nan", "training")
def _(p: Probe) -> Plan:
    return _setting(p, "--lr", "nan")


@case("train/--lr inf", "training")
def _(p: Probe) -> Plan:
    return _setting(p, "--lr", "inf")


@case("train/--milestones a,b", "training")
def _(p: Probe) -> Plan:
    return _setting(p, "--milestones", "a,b")


@case("train/--seq-len 99999999999999999999", "training")
def _(p: Probe) -> Plan:
    return _setting(p, "--seq-len", "99999999999999999999")


@case("train/SIGINT exit status", "training")
def _(p: Probe) -> Plan:
    ws = p.case_dir / "ws"
    log = ws / "runs" / "int" / "metrics.jsonl"

    def interrupt(proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and proc.poll() is None:
            if log.is_file() and "\n" in log.read_text(errors="replace"):
                break
            time.sleep(0.1)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)

    def stopped(res: Result) -> tuple[bool, str]:
        state = ws / "runs" / "int" / "state.json"
        return state.is_file(), "exit 130 with a checkpoint" if state.is_file() else "exit 130 without a checkpoint"

    return Plan(p.train_argv(ws, "int", "--epochs", "500"), ok_rc=130, check=stopped, interrupt=interrupt,
                timeout=240)


@case("train/progress line never shows epoch N+1/N", "training")
def _(p: Probe) -> Plan:
    # The finished-run fixture (2 epochs, trained by the probed checkout) is the probed command.
    res = p.finished_run["result"]
    shown = [(int(a), int(b)) for a, b in re.findall(r"epoch (\d+)/(\d+)", res.stderr)]
    bad = [f"{a}/{b}" for a, b in shown if a > b]
    src = f"import sys; sys.stderr.write({res.stderr[-2000:]!r}); sys.exit({res.rc})"
    return Plan(["-c", src], check=lambda _: (not bad, f"shows epoch {bad[-1]}" if bad else "epochs within range"),
                memory=None, note="the fixture's 2-epoch run, replayed")


# ---- workspace


@case("workspace/read-only (evaluate)", "workspace")
def _(p: Probe) -> Plan:
    return _read_only(p, "evaluate")


@case("workspace/read-only (train)", "workspace")
def _(p: Probe) -> Plan:
    return _read_only(p, "train")


def _read_only(p: Probe, command: str) -> Plan:
    ws = p.case_dir / "ws"
    how = "read-only tmpfs"
    if not p.tmpfs(ws, "1m", read_only=True):
        ws.mkdir(exist_ok=True)
        ws.chmod(0o555)
        how = "chmod 555"
        if os.access(ws, os.W_OK):
            return Plan([], skip="cannot make a read-only folder here (root without mount)")
    argv = p.evaluate(p.synth, p.checkpoint_copy("rand"), ws) if command == "evaluate" else \
        p.train_argv(ws, "r", "--epochs", "1")
    return Plan(argv, names=(str(ws),), timeout=180, note=how)


def _full_disk(p: Probe, command: str) -> Plan:
    ws = p.case_dir / "ws"
    checkpoint = p.checkpoint_copy("rand")
    mounted = p.tmpfs(ws, "256k")
    argv = p.evaluate(p.synth, checkpoint, ws) if command == "evaluate" else p.train_argv(ws, "full", "--epochs", "1")
    return Plan(argv, names=(str(ws),), timeout=180, file_size=None if mounted else 256 * 1024,
                note="256 KiB tmpfs" if mounted else "RLIMIT_FSIZE 256 KiB (no mount)")


@case("workspace/full disk (evaluate)", "workspace")
def _(p: Probe) -> Plan:
    return _full_disk(p, "evaluate")


@case("workspace/full disk (train)", "workspace")
def _(p: Probe) -> Plan:
    return _full_disk(p, "train")


@case("workspace/--workspace before the subcommand", "workspace")
def _(p: Probe) -> Plan:
    chosen = p.case_dir / "chosen"
    decoy = p.case_dir / "default-workspace"
    argv = p.evaluate(p.synth, p.checkpoint_copy("rand"))
    i = argv.index("--workspace")
    del argv[i:i + 2]
    argv[2:2] = ["--workspace", str(chosen)]  # python -m reidviewer --workspace DIR evaluate ...

    def honoured(res: Result) -> tuple[bool, str]:
        used = chosen.is_dir() and any(chosen.iterdir())
        stray = decoy.exists()
        return used and not stray, ("files in the chosen workspace" if used and not stray else
                                    f"chosen used: {used}; default workspace written: {stray}")

    return Plan(argv, expect="accept", check=honoured)


# ---- frames


def _first_tracklet(root: Path) -> Path:
    return root / "i-LIDS-VID" / "sequences" / "cam1" / "person001"


@case("frames/FIFO named .png in a dataset folder", "frames")
def _(p: Probe) -> Plan:
    root = p.synth_copy()
    frames = sorted(_first_tracklet(root).glob("*.png"))
    target = frames[1]
    target.unlink()
    os.mkfifo(target)
    return Plan(p.evaluate(root, p.checkpoint_copy("rand")), names=(target.name,), timeout=45)


@case("frames/1x1 frame", "frames")
def _(p: Probe) -> Plan:
    import cv2
    import numpy as np

    root = p.synth_copy()
    target = sorted(_first_tracklet(root).glob("*.png"))[2]
    cv2.imwrite(str(target), np.full((1, 1, 3), 128, np.uint8))
    return Plan(p.evaluate(root, p.checkpoint_copy("rand")), names=(target.name,))


@case("frames/6000x6000 first frame under a 4 GB memory limit", "frames")
def _(p: Probe) -> Plan:
    import cv2
    import numpy as np

    root = p.synth_copy()
    target = sorted(_first_tracklet(root).glob("*.png"))[0]
    side = 6000
    big = np.zeros((side, side, 3), np.uint8)
    big[side // 4: 3 * side // 4, side // 3: 2 * side // 3] = 200
    cv2.imwrite(str(target), big)
    del big
    return Plan(p.evaluate(root, p.checkpoint_copy("rand")), expect="accept", check=metrics_printed,
                memory=4 * GiB, timeout=240, note="RLIMIT_AS 4 GiB")


# ---- datasets


def _tests_helpers() -> Any:
    sys.path.insert(0, str(OWN_REPO / "tests"))
    import fixtures_datasets

    return fixtures_datasets


@case('data/PRID split with "test": []', "datasets")
def _(p: Probe) -> Plan:
    fx = _tests_helpers()
    root = fx.make_prid(p.case_dir / "prid2011", cam_a=range(1, 7), cam_b=range(1, 7), lengths=30,
                        splits=[{"train": ["person_0001", "person_0002"], "test": ["person_0003", "person_0004"]},
                                {"train": ["person_0001", "person_0002", "person_0003"], "test": []}])
    return Plan(p.cli("info", "--root", str(root), "--protocol", "wang", "--workspace", str(p.case_dir / "ws")),
                names=("splits_prid2011.json",))


@case("data/iLIDS-VID ls_set holding 1e300", "datasets")
def _(p: Probe) -> Plan:
    fx = _tests_helpers()
    ls_set = fx.ilidsvid_ls_set(10).astype("float64")
    ls_set[3, 4] = 1e300
    root = fx.make_ilidsvid(p.case_dir / "ilids", ls_set=ls_set)
    return Plan(p.cli("info", "--root", str(root), "--workspace", str(p.case_dir / "ws")),
                names=("train_test_splits_ilidsvid.mat",), forbid=("RuntimeWarning", "-9223372036854775808"))


def _non_utf8(p: Probe, level: str) -> Plan:
    fx = _tests_helpers()
    root = p.case_dir / "set"
    for part in ("query", "gallery"):
        fx.write_frames(root / part / "p1" / "c1" / "t1", ["0001.png", "0002.png"])
    parent = {"person": root / "query", "camera": root / "query" / "p1", "tracklet": root / "query" / "p1" / "c1"}
    os.mkdir(os.path.join(os.fsencode(parent[level]), b"caf\xe9"))
    return Plan(p.cli("info", "--root", str(root), "--workspace", str(p.case_dir / "ws")),
                names=(str(parent[level]),))


@case("data/non-UTF-8 person folder name", "datasets")
def _(p: Probe) -> Plan:
    return _non_utf8(p, "person")


@case("data/non-UTF-8 camera folder name", "datasets")
def _(p: Probe) -> Plan:
    return _non_utf8(p, "camera")


@case("data/non-UTF-8 tracklet folder name", "datasets")
def _(p: Probe) -> Plan:
    return _non_utf8(p, "tracklet")


# ---- annotations (the library: the command line has no annotation import)

SNIPPET_PRELUDE = textwrap.dedent("""
    import sys
    from reidviewer.errors import ReidViewerError

    def _run(body):
        try:
            body()
        except ReidViewerError as exc:  # what the CLI and the app show as one line
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
""")

ANNOTATION_IMPORT = SNIPPET_PRELUDE + textwrap.dedent("""
    import json
    from pathlib import Path
    from reidviewer.annotations import AnnotationStore, FlagFrames, Relabel
    from reidviewer.annotations.exchange import export_json, import_json
    from reidviewer.data.registry import open_dataset

    def body():
        root, work, what, raw = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
        ds = open_dataset(root)
        first = next(t for t in ds.tracklets if len(t.frames) >= 3)
        other = next(t for t in ds.tracklets if t.pid != first.pid)
        with AnnotationStore(work / "a.sqlite", ds.fingerprint, ds.name, synchronous="NORMAL") as store:
            store.attach(ds)
            store.apply(FlagFrames(first.key, (0, 2), "occluded"))
            store.apply(Relabel(other.key, first.pid))
            doc = json.loads(export_json(store, work / "a.json").read_text())
        where = {"revision": lambda d: d.__setitem__("revision", "@@"),
                 "frame": lambda d: d["frame_flags"][0].__setitem__(1, "@@"),
                 "pid": lambda d: d["labels"][0].__setitem__(1, "@@"),
                 "edit-pid": lambda d: d["edits"][1]["params"].__setitem__("pid", "@@"),
                 "kind": lambda d: d["edits"][0].__setitem__("kind", "@@")}
        where[what](doc)
        bad = work / "bad.json"
        bad.write_text(json.dumps(doc).replace('"@@"', raw))
        with AnnotationStore(work / "fresh.sqlite", ds.fingerprint, ds.name, synchronous="NORMAL") as fresh:
            fresh.attach(ds)
            import_json(fresh, bad)
            print(f"imported: {len(fresh.history())} edits, frame flags {fresh.frame_flags()}")

    _run(body)
""")


def _annotation(p: Probe, what: str, raw: str) -> Plan:
    return Plan(["-c", ANNOTATION_IMPORT, str(p.synth), str(p.case_dir), what, raw], names=("bad.json",))


@case("annotations/JSON frame flag 9999 on a short tracklet", "annotations")
def _(p: Probe) -> Plan:
    return _annotation(p, "frame", "9999")


@case("annotations/JSON revision 1e400", "annotations")
def _(p: Probe) -> Plan:
    return _annotation(p, "revision", "1e400")


@case("annotations/JSON frame 10**30", "annotations")
def _(p: Probe) -> Plan:
    return _annotation(p, "frame", str(10**30))


@case("annotations/JSON label pid 10**30", "annotations")
def _(p: Probe) -> Plan:
    return _annotation(p, "pid", str(10**30))


@case("annotations/JSON edit params pid 10**30", "annotations")
def _(p: Probe) -> Plan:
    return _annotation(p, "edit-pid", str(10**30))


@case("annotations/JSON unknown edit kind", "annotations")
def _(p: Probe) -> Plan:
    return _annotation(p, "kind", '"teleport"')


ANNOTATION_FULL = SNIPPET_PRELUDE + textwrap.dedent("""
    from pathlib import Path
    from reidviewer.annotations import AnnotationStore, SetNote
    from reidviewer.data.registry import open_dataset

    def body():
        root, folder = Path(sys.argv[1]), Path(sys.argv[2])
        ds = open_dataset(root)
        pid = ds.tracklets[0].pid
        with AnnotationStore(folder / "a.sqlite", ds.fingerprint, ds.name, synchronous="NORMAL") as store:
            store.attach(ds)
            for i in range(2000):
                store.apply(SetNote("identity", pid, f"{i} " + "a long note " * 400))
        print("2000 notes written: the disk never filled")

    _run(body)
""")


@case("annotations/edits on a full disk", "annotations")
def _(p: Probe) -> Plan:
    folder = p.case_dir / "store"
    mounted = p.tmpfs(folder, "256k")
    return Plan(["-c", ANNOTATION_FULL, str(p.synth), str(folder)], names=("a.sqlite",),
                file_size=None if mounted else 256 * 1024, timeout=120,
                note="256 KiB tmpfs" if mounted else "RLIMIT_FSIZE 256 KiB (no mount)")


# ---- small

FILE_MODES = textwrap.dedent("""
    import os, sys
    from reidviewer.model.checkpoint import save_checkpoint
    from reidviewer.model.config import ModelConfig
    from reidviewer.model.network import build_model
    os.umask(0o022)
    config = ModelConfig(head="mean", conv_channels=(4, 4, 4), hidden_dim=8, embedding_dim=4)
    weights = save_checkpoint(os.path.join(sys.argv[1], "perm"), build_model(config), config)
    print(oct(weights.stat().st_mode & 0o777), oct(weights.with_suffix(".json").stat().st_mode & 0o777))
""")


@case("small/checkpoint file modes (umask 022)", "small")
def _(p: Probe) -> Plan:
    def same(res: Result) -> tuple[bool, str]:
        modes = res.stdout.split()[-2:]
        return len(set(modes)) == 1, f".safetensors {modes[0]}, .json {modes[-1]}"

    return Plan(["-c", FILE_MODES, str(p.case_dir)], check=same)


# --------------------------------------------------------------------------------------- main


def git_commit(repo: Path) -> str:
    done = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    head = done.stdout.strip() if done.returncode == 0 else "unknown"
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return head + ("+changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=OWN_REPO, help="the checkout to probe (default: this one)")
    parser.add_argument("--only", action="append", default=[], metavar="SUBSTR",
                        help="run only the cases whose name contains SUBSTR (repeatable)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the outcomes as JSON")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the probed commands")
    parser.add_argument("--work", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)

    names = [n for n in CASES if not args.only or any(s in n for s in args.only)]
    if args.list:
        print("\n".join(names))
        return 0
    if not names:
        parser.error("no case matches --only")
    repo = args.repo.resolve()
    if not (repo / "reidviewer" / "__init__.py").is_file():
        parser.error(f"{repo} is not a reidviewer checkout (no reidviewer/__init__.py)")
    work = args.work.resolve() if args.work else Path(tempfile.mkdtemp(prefix="reidviewer-probe-"))
    work.mkdir(parents=True, exist_ok=True)
    probe = Probe(repo, work, args.python)
    where = probe.run(Plan(["-c", "import reidviewer; print(reidviewer.__file__)"], memory=None, timeout=60))
    if not where.stdout.strip().startswith(str(repo)):
        parser.error(f"the probed interpreter imports reidviewer from {where.stdout.strip() or where.stderr[-300:]}, "
                     f"not from {repo}")
    commit = git_commit(repo)
    print(f"probing {repo} ({commit}) with {len(names)} cases; work folder {work}", file=sys.stderr)

    rows: list[dict[str, Any]] = []
    started = time.time()
    try:
        for i, name in enumerate(names, 1):
            group, build = CASES[name]
            probe.case_dir = work / f"case{i:02d}"
            probe.case_dir.mkdir(parents=True, exist_ok=True)
            try:
                plan = build(probe)
            except Exception as exc:  # noqa: BLE001 - a fixture that cannot be made here
                plan = Plan([], skip=f"setup failed: {type(exc).__name__}: {exc}"[:300])
            res = Result(None, "", "", 0.0) if plan.skip else probe.run(plan)
            verdict, note = classify(plan, res)
            row = {"case": name, "group": group, "verdict": verdict, "rc": res.rc, "seconds": round(res.seconds, 1),
                   "last_line": shown_line(res), "note": note,
                   "fixture": plan.note, "stderr_tail": res.stderr[-1500:]}
            rows.append(row)
            print(f"[{i}/{len(names)}] {verdict:<11} {res.seconds:5.1f}s {name}", file=sys.stderr)
    finally:
        probe.unmount_all()
        for path in work.rglob("*"):  # chmod 555 folders cannot be removed otherwise
            if path.is_dir() and not path.is_symlink():
                try:
                    path.chmod(0o755)
                except OSError:
                    pass
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    totals = Counter(r["verdict"] for r in rows)
    width = max(len(r["case"]) for r in rows)
    heading = "last line of stderr (a traceback's exception; stdout if stderr is empty)"
    print(f"\n{'case':<{width}}  {'verdict':<11}  {heading}")
    print(f"{'-' * width}  {'-' * 11}  {'-' * 60}")
    for r in rows:
        line = r["last_line"].replace("\n", " ")
        line = line if len(line) <= 110 else line[:107] + "..."
        print(f"{r['case']:<{width}}  {r['verdict']:<11}  {line}")
    print(f"\n{repo} ({commit}): {len(rows)} cases in {time.time() - started:.0f} s")
    for verdict in VERDICTS:
        if totals[verdict]:
            print(f"  {verdict:<11} {totals[verdict]}")
    if args.json:
        args.json.write_text(json.dumps({
            "repo": str(repo), "commit": commit, "python": args.python, "cases": rows,
            "totals": {v: totals[v] for v in VERDICTS if totals[v]},
            "seconds": round(time.time() - started, 1),
        }, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
