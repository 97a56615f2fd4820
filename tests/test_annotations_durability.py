"""Durability and concurrency: a SIGKILLed writer loses no reported edit; a second instance is read-only."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from _annotations_fixtures import MISLABELLED, make_dataset

from reidviewer.annotations import AnnotationError, AnnotationStore, Edit, FlagFrames, Relabel, SetNote

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock are POSIX")

REPO = Path(__file__).resolve().parents[1]

# The writer: applies 1,000 edits with the store's default settings (what the app uses) and
# prints each edit id once apply() has returned, i.e. after its commit.
WRITER = textwrap.dedent(
    """
    import sys
    from reidviewer.annotations import AnnotationStore, FlagFrames, Relabel, SetNote

    store = AnnotationStore(sys.argv[1], mode="write")
    base = store.dump()["base"]
    print("ready", flush=True)
    for i in range(1000):
        key, pid, n = base[i % len(base)]
        if i % 3 == 0:
            edit = SetNote("tracklet", key, f"note {i}")
        elif i % 3 == 1:
            edit = FlagFrames(key, (i % n,), "occluded")
        else:
            edit = Relabel(key, 1000 + i)
        edit_id = store.apply(edit)
        # Padded lines: with a one-page pipe the writer can run at most ~256 edits ahead of
        # the reader, so the kill is sure to land mid-run even on a busy machine.
        print(f"{edit_id} {i}".ljust(15), flush=True)
    print("done", flush=True)
    """
)


def expected_edit(i: int, base: list) -> Edit:
    key, _, n = base[i % len(base)]
    if i % 3 == 0:
        return SetNote("tracklet", key, f"note {i}")
    if i % 3 == 1:
        return FlagFrames(key, (i % n,), "occluded")
    return Relabel(key, 1000 + i)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "toy")


@pytest.fixture
def store_path(tmp_path, dataset):
    path = tmp_path / "ws" / "annotations" / "toy.sqlite"
    with AnnotationStore(path, dataset.fingerprint, dataset.name) as s:
        s.attach(dataset)
    return path


def test_a_killed_writer_loses_no_edit_it_reported_committed(store_path, dataset, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        import fcntl

        if hasattr(fcntl, "F_SETPIPE_SZ"):  # Linux
            fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        reported: list[tuple[int, int]] = []
        while len(reported) < 300:
            line = proc.stdout.readline()
            assert line, f"writer stopped early: {proc.stderr.read()}"
            edit_id, i = map(int, line.split())
            reported.append((edit_id, i))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # Lines still in the pipe were printed too, each after its apply() returned: they are
        # reported commits as well, and the last one was printed just before the kill.
        for line in proc.stdout:
            if line.strip():
                edit_id, i = map(int, line.split())
                reported.append((edit_id, i))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # The kernel dropped the dead writer's lock: the store opens for writing at once.
    with AnnotationStore(store_path, mode="write") as store:
        assert store.integrity_check() == "ok"
        base = store.dump()["base"]
        history = {r.id: r for r in store.history()}
        lost = [edit_id for edit_id, _ in reported if edit_id not in history]
        assert not lost, f"{len(lost)} edits reported committed are missing, first {lost[:5]}"
        assert len(history) < 1000, "the kill must land in the middle of the run"
        for edit_id, i in reported:
            record = history[edit_id]
            assert record.status == "applied"
            assert record.edit == expected_edit(i, base)
        # The edits are one gap-free sequence; at most one committed edit was not printed yet.
        assert sorted(history) == list(range(1, len(history) + 1))
        assert len(history) - reported[-1][0] in (0, 1)
        assert store.content_hash() == store.recompute_hash()
        # The state is exactly what replaying the surviving history gives.
        with AnnotationStore(tmp_path / "replay.sqlite", synchronous="NORMAL") as replay:
            replay.attach(dataset)
            for record in history.values():
                replay.apply(record.edit)
            assert replay.dump() == store.dump()
        store.apply(SetNote("identity", 1, "still writable after the crash"))


def test_a_second_instance_opens_read_only_and_says_who_holds_the_store(store_path):
    with AnnotationStore(store_path) as first:
        assert not first.read_only and "writable" in first.mode_reason
        second = AnnotationStore(store_path)
        try:
            assert second.read_only
            assert f"pid {os.getpid()}" in second.mode_reason and "read-only" in second.mode_reason
            with pytest.raises(AnnotationError, match="cannot be edited: read-only"):
                second.apply(Relabel(MISLABELLED, 5))
            # WAL: the reader sees each commit of the writer, consistently.
            first.apply(Relabel(MISLABELLED, 5))
            assert second.labels() == {MISLABELLED: 5}
            assert second.version() == first.version()
            assert second.members(5) == first.members(5)
            with pytest.raises(AnnotationError, match=f"cannot be opened for writing: open for writing in another reidviewer \\(pid {os.getpid()}"):
                AnnotationStore(store_path, mode="write")
            assert not second.reopen_for_writing()
            first.close()
            assert second.reopen_for_writing()
            assert not second.read_only
            second.apply(Relabel(MISLABELLED, 6))
            assert second.labels() == {}
        finally:
            second.close()


def test_a_second_process_opens_read_only_and_names_the_holder(store_path):
    code = textwrap.dedent(
        """
        import sys
        from reidviewer.annotations import AnnotationStore
        s = AnnotationStore(sys.argv[1])
        print(s.read_only)
        print(s.note("identity", 3))
        print(s.mode_reason)
        """
    )
    with AnnotationStore(store_path) as first:
        first.apply(SetNote("identity", 3, "seen by the other process"))
        out = subprocess.run(
            [sys.executable, "-c", code, str(store_path)], capture_output=True, text=True, env=_env(), timeout=60
        )
    assert out.returncode == 0, out.stderr
    read_only, note, reason = out.stdout.splitlines()
    assert read_only == "True"
    assert note == "seen by the other process"
    assert f"pid {os.getpid()}" in reason


def test_a_second_instance_can_wait_for_the_writer_to_close(store_path):
    first = AnnotationStore(store_path)
    timer = threading.Timer(0.3, first.close)
    timer.start()
    t0 = time.monotonic()
    try:
        with AnnotationStore(store_path, wait=10) as second:
            assert not second.read_only
            assert time.monotonic() - t0 >= 0.25
    finally:
        timer.cancel()
        first.close()
