"""Issue #14: bad inputs and faults, as a hostile user would try them.

Each case of the issue's "Why" list is here: a valid checkpoint the old sniff took for a pickle,
a finished run overwritten, a huge first frame, a FIFO named ``.png``, out-of-range numbers in
checkpoint and annotation JSON, a read-only or full workspace, nonsense training settings, a
truncated or garbled resume state, non-UTF-8 names, an empty PRID test split, ``ls_set`` holding
1e300, ``--workspace`` before the subcommand, SIGINT's exit status, file permissions, repeated
metrics after a kill, and the progress line. Where the issue describes the command line, the
command line is used and the one-line message is asserted (exit 2, the file or option named,
no traceback). ``scripts/probe_bad_inputs.py`` runs the same cases against any source tree.
"""
from __future__ import annotations

import copy
import errno
import json
import os
import re
import shutil
import signal
import struct
import threading
import time
import tracemalloc
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from _annotations_fixtures import make_dataset
from fixtures_datasets import ilidsvid_ls_set, make_ilidsvid, make_prid

from reidviewer.annotations import AnnotationError, AnnotationStore, FlagFrames, Relabel, SetNote
from reidviewer.annotations.exchange import export_json, import_json
from reidviewer.cli import main
from reidviewer.data.frames import read_frame
from reidviewer.data.preprocess import PreprocessConfig, preprocess_tracklet
from reidviewer.data.registry import open_dataset
from reidviewer.engine.train import TrainConfig, train
from reidviewer.errors import CheckpointError, DatasetError, FrameError
from reidviewer.model.checkpoint import load_checkpoint, save_checkpoint
from reidviewer.model.config import ModelConfig
from reidviewer.model.network import build_model
from reidviewer.workspace import Workspace

# ---------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    """A folder-layout SynthWalk set small enough that a training epoch takes a blink."""
    from reidviewer.data.synthwalk import SynthConfig, generate

    out = tmp_path_factory.mktemp("bad-inputs") / "set"
    generate(out, SynthConfig(ids=8, seed=4, layout="folder", cameras=2, min_tracklets=2, max_tracklets=3,
                              min_len=4, max_len=5, height=32, width=16, image_format="png"), workers=1)
    return out


def train_cli(root: Path, ws: Path, *more: str) -> list[str]:
    """A ``reidviewer train`` command line for the tiny set (the fast recipe, tiny batches)."""
    return ["train", "--root", str(root), "--workspace", str(ws), "--ids-per-batch", "2", "--tracklets-per-id", "2",
            "--seq-len", "4", "--eval-every", "0", "--threads", "1", *more]


@pytest.fixture(scope="module")
def finished_run(tiny_set, tmp_path_factory) -> Path:
    """A workspace holding the finished 2-epoch run ``done`` (copy it before changing it)."""
    ws = tmp_path_factory.mktemp("finished") / "ws"
    assert main(train_cli(tiny_set, ws, "--out", "done", "--epochs", "2")) == 0
    return ws


def copy_of(ws: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ws"
    shutil.copytree(ws, target)
    return target


def assert_one_line_error(rc: int, err: str, *names: str) -> str:
    """Exit status 2 and a last line ``reidviewer: error: ...`` naming every one of ``names``."""
    assert "Traceback" not in err, err[-3000:]
    assert rc == 2, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("reidviewer: error: "), err[-3000:]
    for name in names:
        assert name in last, f"{name!r} not in {last!r}"
    return last


def assert_usage_error(capsys, argv: list[str], option: str) -> str:
    """argparse refuses the value: exit 2 and a message naming the option."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "Traceback" not in err
    assert f"argument {option}" in err, err
    return err


# ------------------------------------------------------------------------------ checkpoints

#: Pickle opcodes the old one-byte sniff compared the header length's low byte with.
PICKLE_OPCODES = {0x80: "PROTO", ord("("): "MARK", ord("}"): "EMPTY_DICT", ord("]"): "EMPTY_LIST", ord("c"): "GLOBAL"}

# Architectures the project builds whose safetensors header length mod 256 is a pickle opcode
# (lengths are multiples of 8, so only PROTO 0x80 and MARK 0x28 can occur).
OPCODE_ARCHITECTURES = {
    "rnn-150-classes": dict(head="rnn", num_classes=150),  # iLIDS-VID's 150 training identities
    "rnn-0-classes": dict(head="rnn", num_classes=0),
    "rnn-84-classes": dict(head="rnn", num_classes=84),
    "ran-1-class": dict(head="ran", num_classes=1),
    "softmax-1-class": dict(head="softmax", num_classes=1),
    "mean-bnneck-179-classes": dict(head="mean", bnneck=True, num_classes=179),
    "ran-bnneck-79-classes": dict(head="ran", bnneck=True, num_classes=79),
    "rnn-batchnorm-0-classes": dict(head="rnn", batchnorm=True, num_classes=0),
}


@pytest.mark.parametrize("name", list(OPCODE_ARCHITECTURES))
def test_a_checkpoint_whose_header_length_looks_like_a_pickle_opcode_loads(tmp_path, name):
    config = ModelConfig(**OPCODE_ARCHITECTURES[name])
    torch.manual_seed(0)
    model = build_model(config)
    path = save_checkpoint(tmp_path / name, model, config)
    (length,) = struct.unpack("<Q", path.read_bytes()[:8])
    assert length % 256 in PICKLE_OPCODES  # the case the old sniff refused as "a Python pickle"
    loaded, loaded_config, _ = load_checkpoint(path)
    assert loaded_config == config
    expected = model.state_dict()
    assert all(torch.equal(expected[k], v) for k, v in loaded.state_dict().items())


@pytest.mark.parametrize("kind", ["pickle", "torch-zip"])
def test_a_pickle_is_still_refused_for_what_it_is(tmp_path, random_checkpoint, kind):
    import pickle

    target = tmp_path / "evil.safetensors"
    shutil.copy(random_checkpoint.with_suffix(".json"), tmp_path / "evil.json")
    if kind == "pickle":
        target.write_bytes(pickle.dumps({"weights": list(range(100))}, protocol=2))
        expected = "is a Python pickle"
    else:
        torch.save({"w": torch.zeros(3)}, target)
        expected = "zip archive"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(target)


def _checkpoint_with(tmp_path: Path, random_checkpoint: Path, field: str, raw: str) -> Path:
    """A copy of ``random_checkpoint`` whose JSON says ``"field": raw`` (raw JSON text)."""
    target = tmp_path / "odd.safetensors"
    shutil.copy(random_checkpoint, target)
    doc = json.loads(random_checkpoint.with_suffix(".json").read_text())
    doc["architecture"][field] = "@@VALUE@@"
    target.with_suffix(".json").write_text(json.dumps(doc).replace('"@@VALUE@@"', raw))
    return target


@pytest.mark.parametrize(("field", "raw"), [
    ("iterations", "1000000000"),
    ("iterations", "1e400"),
    ("num_classes", str(10**29)),
    ("hidden_dim", str(10**11)),
])
def test_architecture_numbers_that_do_not_fit_are_refused_fast(tmp_path, random_checkpoint, field, raw):
    path = _checkpoint_with(tmp_path, random_checkpoint, field, raw)
    t0 = time.monotonic()
    with pytest.raises(CheckpointError, match=field) as info:
        load_checkpoint(path)
    assert time.monotonic() - t0 < 10
    assert info.value.path.name == "odd.json"


def test_evaluating_a_checkpoint_with_a_billion_iterations_is_one_line(tmp_path, tiny_set, random_checkpoint,
                                                                       capsys):
    path = _checkpoint_with(tmp_path, random_checkpoint, "iterations", "1000000000")
    t0 = time.monotonic()
    rc = main(["evaluate", "--root", str(tiny_set), "--checkpoint", str(path), "--workspace", str(tmp_path / "ws")])
    assert_one_line_error(rc, capsys.readouterr().err, "odd.json", "iterations")
    assert time.monotonic() - t0 < 120


def test_checkpoint_files_are_written_with_one_permission_mode(tmp_path):
    old = os.umask(0o022)
    try:
        config = ModelConfig(head="mean", conv_channels=(4, 4, 4), hidden_dim=8, embedding_dim=4)
        weights = save_checkpoint(tmp_path / "perm", build_model(config), config)
    finally:
        os.umask(old)
    assert weights.stat().st_mode & 0o777 == 0o644
    assert weights.with_suffix(".json").stat().st_mode & 0o777 == 0o644


# -------------------------------------------------------------------------- training runs


def test_out_over_a_finished_run_is_refused_and_the_run_kept(finished_run, tiny_set, tmp_path, capsys):
    ws = copy_of(finished_run, tmp_path)
    last = ws / "runs" / "done" / "last.safetensors"
    before = last.read_bytes()
    rc = main(train_cli(tiny_set, ws, "--out", "done", "--epochs", "1"))
    assert_one_line_error(rc, capsys.readouterr().err, "--resume", "--overwrite", "done")
    assert last.read_bytes() == before
    assert json.loads((ws / "runs" / "done" / "state.json").read_text())["position"]["epoch"] == 2


@pytest.mark.parametrize(("option", "value"), [
    ("--pairs-per-step", "0"),
    ("--epochs", "-1"),
    ("--lr", "nan"),
    ("--lr", "inf"),
    ("--milestones", "a,b"),
    ("--seq-len", "99999999999999999999"),
])
def test_nonsense_training_settings_exit_2_naming_the_option(tmp_path, tiny_set, capsys, option, value):
    argv = train_cli(tiny_set, tmp_path / "ws", "--recipe", "paper", "--out", "x", f"{option}={value}")
    assert_usage_error(capsys, argv, option)
    assert not (tmp_path / "ws" / "runs" / "x").exists()


def test_a_truncated_checkpoint_on_resume_is_one_line(finished_run, tiny_set, tmp_path, capsys):
    ws = copy_of(finished_run, tmp_path)
    last = ws / "runs" / "done" / "last.safetensors"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    rc = main(train_cli(tiny_set, ws, "--out", "done", "--resume", "--epochs", "3"))
    assert_one_line_error(rc, capsys.readouterr().err, "last.safetensors", "truncated")


def test_a_garbled_state_json_on_resume_is_one_line(finished_run, tiny_set, tmp_path, capsys):
    ws = copy_of(finished_run, tmp_path)
    (ws / "runs" / "done" / "state.json").write_text('{"position": {"epoch": 2,\n')
    rc = main(train_cli(tiny_set, ws, "--out", "done", "--resume", "--epochs", "3"))
    assert_one_line_error(rc, capsys.readouterr().err, "state.json", "resume")


def test_sigint_stops_training_with_a_checkpoint_and_exit_130(tiny_set, tmp_path, capsys):
    ws = tmp_path / "ws"
    log = ws / "runs" / "int" / "metrics.jsonl"

    def interrupt_when_training() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if log.is_file() and "loss_total" in log.read_text():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=interrupt_when_training, daemon=True)
    thread.start()
    rc = main(train_cli(tiny_set, ws, "--out", "int", "--epochs", "500"))
    thread.join(5)
    err = capsys.readouterr().err
    assert rc == 130, err[-2000:]
    assert "Ctrl+C" in err and "Traceback" not in err
    state = json.loads((ws / "runs" / "int" / "state.json").read_text())
    assert state["position"]["global_step"] > 0 and state["position"]["epoch"] < 500


def test_metrics_do_not_repeat_steps_after_a_kill_and_resume(tiny_set, tmp_path):
    ws = Workspace(tmp_path / "ws")

    def config() -> TrainConfig:
        return TrainConfig(recipe="fast", root=str(tiny_set), epochs=3, ids_per_batch=2, tracklets_per_id=2,
                           seq_len=4, eval_every=0, checkpoint_every=1, seed=3, lr=3e-3, run_name="killed",
                           model={"conv_channels": [8, 16, 16], "hidden_dim": 64, "embedding_dim": 32})

    class Killed(Exception):
        """The process dies: nothing after this point runs (no final checkpoint)."""

    def die_in_the_second_epoch(p) -> None:
        if p.epoch == 1 and p.step == 2:
            raise Killed

    with pytest.raises(Killed):
        train(config(), ws, progress=die_in_the_second_epoch, report_interval=0)
    run = ws.runs_dir / "killed"
    saved_at = json.loads((run / "state.json").read_text())["position"]["global_step"]
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"global_step": 99, "loss_tot')  # a line cut short by the kill
    logged = [json.loads(line)["global_step"] for line in (run / "metrics.jsonl").read_text().splitlines()[:-1]]
    assert max(logged) > saved_at  # the killed run logged steps after its last checkpoint
    out = train(config(), ws, resume=True, report_interval=0)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["global_step"] for r in records if "loss_total" in r]
    assert steps == sorted(set(steps)), steps  # no step twice, in order
    assert steps[-1] == out.global_step


def test_the_progress_line_never_counts_past_the_last_epoch(tiny_set, tmp_path, capsys):
    assert main(train_cli(tiny_set, tmp_path / "ws", "--out", "p", "--epochs", "2")) == 0
    err = capsys.readouterr().err
    shown = [(int(a), int(b)) for a, b in re.findall(r"epoch (\d+)/(\d+)", err)]
    assert shown and all(1 <= a <= b for a, b in shown), shown
    assert shown[-1] == (2, 2)


# ------------------------------------------------------------------------------ workspace


def test_workspace_before_the_subcommand_is_honoured(tiny_set, tmp_path, monkeypatch, capsys):
    decoy = tmp_path / "default-workspace"
    monkeypatch.setenv("REIDVIEWER_WORKSPACE", str(decoy))
    ws = tmp_path / "chosen"
    argv = train_cli(tiny_set, ws, "--out", "w", "--epochs", "1")
    argv.remove("--workspace")
    argv.remove(str(ws))
    assert main(["--workspace", str(ws), *argv]) == 0
    assert (ws / "runs" / "w" / "last.safetensors").is_file()
    assert not decoy.exists()


def test_a_read_only_workspace_is_one_line(tiny_set, random_checkpoint, tmp_path, capsys):
    ws = tmp_path / "ws"
    ws.mkdir()
    ws.chmod(0o555)
    try:
        if os.access(ws, os.W_OK):
            pytest.skip("running as root: chmod does not make a folder read-only here")
        rc = main(["evaluate", "--root", str(tiny_set), "--checkpoint", str(random_checkpoint),
                   "--workspace", str(ws)])
        assert_one_line_error(rc, capsys.readouterr().err, str(ws), "read-only")
        rc = main(train_cli(tiny_set, ws, "--out", "r", "--epochs", "1"))
        assert_one_line_error(rc, capsys.readouterr().err, str(ws), "read-only")
    finally:
        ws.chmod(0o755)


@pytest.fixture
def read_only_file_system(monkeypatch):
    """``make(folder)``: every folder or file created under ``folder`` fails with EROFS, as on a
    read-only mount (works for root too, for whom chmod is no obstacle)."""

    def make(folder: Path) -> None:
        real_open, real_mkdir = os.open, os.mkdir
        prefix = str(folder)

        def inside(path) -> bool:
            return os.fsdecode(os.fspath(path)).startswith(prefix)

        def fake_open(path, flags, *args, **kwargs):
            if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
            return real_open(path, flags, *args, **kwargs)

        def fake_mkdir(path, *args, **kwargs):
            if inside(path) and not os.path.isdir(path):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
            return real_mkdir(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", fake_open)
        monkeypatch.setattr(os, "mkdir", fake_mkdir)

    return make


@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_a_read_only_mount_is_one_line(tiny_set, random_checkpoint, tmp_path, capsys, read_only_file_system,
                                       command):
    ws = tmp_path / "ws"
    read_only_file_system(ws)
    if command == "evaluate":
        argv = ["evaluate", "--root", str(tiny_set), "--checkpoint", str(random_checkpoint), "--workspace", str(ws)]
    else:
        argv = train_cli(tiny_set, ws, "--out", "r", "--epochs", "1")
    assert_one_line_error(main(argv), capsys.readouterr().err, str(ws), "read-only")


def test_a_full_disk_while_caching_frames_is_one_line(tiny_set, random_checkpoint, tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        # What numpy's tofile says on a full disk: no errno, just the byte counts.
        raise OSError("6400 requested and 0 written")

    monkeypatch.setattr(np, "save", full)
    rc = main(["evaluate", "--root", str(tiny_set), "--checkpoint", str(random_checkpoint),
               "--workspace", str(tmp_path / "ws")])
    assert_one_line_error(rc, capsys.readouterr().err, str(tmp_path / "ws" / "cache"), "disk")


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_keeps_the_last_one(finished_run, tiny_set, tmp_path,
                                                                                  capsys, monkeypatch):
    import safetensors.torch
    from safetensors import SafetensorError

    ws = copy_of(finished_run, tmp_path)
    last = ws / "runs" / "done" / "last.safetensors"
    before = last.read_bytes()

    def full(*args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                              'message: "No space left on device" })')

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    rc = main(train_cli(tiny_set, ws, "--out", "done", "--resume", "--epochs", "3"))
    assert_one_line_error(rc, capsys.readouterr().err, "done", "is the disk full")
    assert last.read_bytes() == before
    assert not [p for p in last.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind


# --------------------------------------------------------------------------------- frames


def test_a_huge_first_frame_costs_one_frames_memory(tmp_path):
    side = 4000  # an 8000×8000 frame behaves the same, at four times the bytes
    big = np.zeros((side, side, 3), np.uint8)
    big[side // 4: 3 * side // 4, side // 3: 2 * side // 3] = 200
    cv2.imwrite(str(tmp_path / "0001.png"), big)
    del big
    small = (np.random.default_rng(0).random((128, 64, 3)) * 255).astype(np.uint8)
    for i in (2, 3, 4):
        cv2.imwrite(str(tmp_path / f"000{i}.png"), small)
    frame_bytes = side * side * 3
    notices: list[str] = []
    tracemalloc.start()
    try:
        out = preprocess_tracklet(sorted(tmp_path.glob("*.png")), PreprocessConfig(), notices=notices)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape[:2] == (4, 5)
    # Decoding the one huge frame (and its RGB copy) is the peak; the old code stacked every
    # frame at the first frame's size and computed flow there (gigabytes at 8000×8000).
    assert peak < 2.5 * frame_bytes, f"peak {peak / 2**20:.0f} MB"
    assert any("scaled" in n and "4000×4000" in n for n in notices)


def test_a_fifo_named_png_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "0001.png"
    os.mkfifo(fifo)
    result: dict = {}

    def read() -> None:
        try:
            read_frame(fifo)
            result["value"] = "read"
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            result["value"] = exc

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():  # blocked in open(): a writer unblocks it so the thread can end
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(5)
        pytest.fail("read_frame blocked on a FIFO")
    assert isinstance(result["value"], FrameError)
    assert "not a regular file" in str(result["value"]) and str(fifo) in str(result["value"])


@pytest.mark.parametrize(("width", "height"), [(1, 1), (3, 40), (40, 2)])
def test_a_tiny_frame_is_refused_naming_it(tmp_path, width, height):
    path = tmp_path / "0001.png"
    cv2.imwrite(str(path), np.full((height, width, 3), 128, np.uint8))
    with pytest.raises(FrameError, match=f"{width}×{height} pixels: too small") as info:
        read_frame(path)
    assert info.value.path == path


# -------------------------------------------------------------------------------- datasets


def test_a_prid_split_without_test_persons_is_refused_naming_the_file(tmp_path, capsys):
    root = make_prid(tmp_path / "prid2011", cam_a=range(1, 7), cam_b=range(1, 7), lengths=30,
                     splits=[{"train": ["person_0001", "person_0002"], "test": ["person_0003", "person_0004"]},
                             {"train": ["person_0001", "person_0002", "person_0003"], "test": []}])
    with pytest.raises(DatasetError, match=r"split 1 .*no test persons") as info:
        open_dataset(root, "prid2011", "wang")
    assert info.value.path.name == "splits_prid2011.json"
    rc = main(["info", "--root", str(root), "--protocol", "wang", "--workspace", str(tmp_path / "ws")])
    assert_one_line_error(rc, capsys.readouterr().err, "splits_prid2011.json", "split 1")


def test_ls_set_holding_1e300_is_refused_without_a_warning(tmp_path):
    ls_set = ilidsvid_ls_set(10).astype(np.float64)
    ls_set[3, 4] = 1e300
    root = make_ilidsvid(tmp_path / "ilids", ls_set=ls_set)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DatasetError, match="out-of-range number") as info:
            open_dataset(root, "ilidsvid")
    assert info.value.path.name == "train_test_splits_ilidsvid.mat"
    assert "-9223372036854775808" not in str(info.value)


@pytest.mark.parametrize("level", ["person", "camera", "tracklet"])
def test_non_utf8_folder_names_are_named(tmp_path, capsys, level):
    from fixtures_datasets import write_frames

    root = tmp_path / "set"
    for part in ("query", "gallery"):
        write_frames(root / part / "p1" / "c1" / "t1", ["0001.png", "0002.png"])
    parent = {"person": root / "query", "camera": root / "query" / "p1", "tracklet": root / "query" / "p1" / "c1"}
    os.mkdir(os.path.join(os.fsencode(parent[level]), b"caf\xe9"))
    rc = main(["info", "--root", str(root), "--workspace", str(tmp_path / "ws")])
    assert_one_line_error(rc, capsys.readouterr().err, str(parent[level]), "UTF-8")


# ----------------------------------------------------------------------------- annotations


@pytest.fixture
def exported(tmp_path):
    """``(dataset, export document)`` of a store with a few edits."""
    dataset = make_dataset(tmp_path / "toy")
    with AnnotationStore(tmp_path / "a.sqlite", dataset.fingerprint, dataset.name, synchronous="NORMAL") as store:
        store.attach(dataset)
        store.apply(FlagFrames("cam1/person003", (0, 2), "occluded"))
        store.apply(Relabel("cam1/person001", 4))
        path = export_json(store, tmp_path / "a.json")
    return dataset, json.loads(path.read_text())


def _set_revision(d, v):
    d["revision"] = v


def _set_flag_frame(d, v):
    d["frame_flags"][0][1] = v


def _set_label_pid(d, v):
    d["labels"][0][1] = v


def _set_edit_pid(d, v):
    d["edits"][1]["params"]["pid"] = v


def _set_edit_kind(d, v):
    d["edits"][0]["kind"] = v


def _set_change_frame(d, v):
    d["edits"][0]["changes"][0]["key"][1] = v


ANNOTATION_CASES = {
    # name: (change, raw JSON value, what the message must say)
    "revision-1e400": (_set_revision, "1e400", "revision"),
    "revision-float": (_set_revision, "2.5", "revision"),
    "frame-10**30": (_set_flag_frame, str(10**30), "frame_flags[0] frame"),
    "frame-9999-on-a-5-frame-tracklet": (_set_flag_frame, "9999", "frame 9999 is out of range for 'cam1/person003'"),
    "pid-10**30": (_set_label_pid, str(10**30), "labels[0] pid"),
    "pid-float": (_set_label_pid, "4.0", "labels[0] pid"),
    "edit-pid-10**30": (_set_edit_pid, str(10**30), "edits[1] (id 2) params"),
    "unknown-edit-kind": (_set_edit_kind, '"teleport"', "unknown edit kind 'teleport'"),
    "undo-record-frame-10**30": (_set_change_frame, str(10**30), "edits[0] (id 1) changes[0]"),
}


@pytest.mark.parametrize("name", list(ANNOTATION_CASES))
def test_bad_numbers_and_kinds_in_annotation_json_name_the_file_and_field(tmp_path, exported, name):
    dataset, doc = exported
    change, raw, says = ANNOTATION_CASES[name]
    doc = copy.deepcopy(doc)
    change(doc, "@@VALUE@@")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc).replace('"@@VALUE@@"', raw))
    with AnnotationStore(tmp_path / "fresh.sqlite", synchronous="NORMAL") as fresh:
        fresh.attach(dataset)
        with pytest.raises(AnnotationError) as info:
            import_json(fresh, bad)
        assert info.value.path == bad
        assert says in info.value.problem, info.value.problem
        assert fresh.history() == [] and fresh.frame_flags() == {}  # nothing half-imported


def test_a_json_flag_past_the_tracklet_is_refused_like_the_csv_one(tmp_path, exported):
    from reidviewer.annotations.exchange import import_frame_flags_csv

    dataset, doc = exported
    doc = copy.deepcopy(doc)
    doc["frame_flags"].append(["cam1/person003", 9999, "occluded"])
    bad_json = tmp_path / "bad.json"
    bad_json.write_text(json.dumps(doc))
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("tracklet_key,frame,flag\ncam1/person003,9999,occluded\n")
    problems = []
    for path, do in ((bad_csv, import_frame_flags_csv), (bad_json, import_json)):
        with AnnotationStore(tmp_path / f"{path.suffix[1:]}.sqlite", synchronous="NORMAL") as store:
            store.attach(dataset)
            with pytest.raises(AnnotationError) as info:
                do(store, path)
            assert info.value.path == path
            problems.append(info.value.problem)
    assert all("frame 9999 is out of range for 'cam1/person003' (5 frames)" in p for p in problems)


@pytest.mark.parametrize(("pragma", "says"), [("max_page_count", "disk is full"), ("query_only", "read-only")])
def test_an_edit_on_a_full_or_read_only_store_is_an_annotation_error_and_loses_nothing(tmp_path, pragma, says):
    dataset = make_dataset(tmp_path / "toy")
    path = tmp_path / "a.sqlite"
    with AnnotationStore(path, dataset.fingerprint, dataset.name, synchronous="NORMAL") as store:
        store.attach(dataset)
        store.apply(FlagFrames("cam1/person003", (0, 2), "occluded"))
        store.apply(Relabel("cam1/person001", 4))
        saved = store.dump(history=True)
        # Real SQLite errors: SQLITE_FULL once the file may not grow, SQLITE_READONLY.
        if pragma == "max_page_count":
            pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
            store.conn.execute(f"PRAGMA max_page_count = {pages}")
        else:
            store.conn.execute("PRAGMA query_only = ON")
        with pytest.raises(AnnotationError, match=says) as info:
            for i in range(50):
                store.apply(SetNote("identity", 4, f"{i} " + "a long note " * 400))
        assert info.value.path == path
        assert "every edit saved before is kept" in info.value.problem
        assert store.dump(history=True) == saved  # the failed edit left no trace
        store.conn.execute("PRAGMA max_page_count = 1000000" if pragma == "max_page_count"
                           else "PRAGMA query_only = OFF")
        store.apply(SetNote("identity", 4, "after the disk was freed"))
        assert store.note("identity", 4) == "after the disk was freed"
    with AnnotationStore(path, mode="read") as again:
        assert again.labels() == {"cam1/person001": 4}
        assert len(again.history()) == 3
