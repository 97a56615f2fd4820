"""The annotation store: every edit kind through apply/undo/redo, history, version, exchange."""
from __future__ import annotations

import json
import sqlite3

import pytest
from _annotations_fixtures import MISLABELLED, make_dataset

from reidviewer.annotations import (
    AnnotationError, AnnotationStore, BulkFrameFlags, FlagFrames, FlagTracklets, Merge, Relabel, SetNote, Split,
)
from reidviewer.annotations.exchange import (
    export_frame_flags_csv,
    export_json,
    frame_flags_csv,
    import_frame_flags_csv,
    import_json,
)
from reidviewer.annotations.schema import SCHEMA_VERSION
from reidviewer.workspace import Workspace


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "toy")


@pytest.fixture
def store(tmp_path, dataset):
    s = AnnotationStore(tmp_path / "ann.sqlite", dataset.fingerprint, dataset.name, synchronous="NORMAL")
    s.attach(dataset)
    yield s
    s.close()


# Each case: the edit, and a check of the state it must produce (seen through the read API).
EDIT_CASES = {
    "relabel": (Relabel(MISLABELLED, 5), lambda s: s.pid_of(MISLABELLED) == 5 and MISLABELLED in s.members(5)),
    "merge": (Merge(keep=4, absorb=6), lambda s: s.members(6) == [] and len(s.members(4)) == 5),
    "split": (
        Split(["cam1/person002", "cam2/person002"]),
        lambda s: s.members(2) == [] and s.members(7) == ["cam1/person002", "cam2/person002"],
    ),
    "flag_frames": (
        FlagFrames("cam1/person003", (0, 2), "occluded"),
        lambda s: s.frame_flags_of("cam1/person003") == {0: {"occluded"}, 2: {"occluded"}},
    ),
    "bulk_frame_flags": (
        BulkFrameFlags(rows=(("cam1/person001", 1, "bad_crop"), ("cam2/person004", 3, "wrong_person"))),
        lambda s: s.frame_flags() == {"cam1/person001": {1: {"bad_crop"}}, "cam2/person004": {3: {"wrong_person"}}},
    ),
    "flag_tracklets": (
        FlagTracklets(["cam1/person001", "cam2/person005"], "junk"),
        lambda s: s.tracklet_flags() == {"cam1/person001": {"junk"}, "cam2/person005": {"junk"}},
    ),
    "note_tracklet": (SetNote("tracklet", MISLABELLED, "looks like person 5"),
                      lambda s: s.note("tracklet", MISLABELLED) == "looks like person 5"),
    "note_identity": (SetNote("identity", 4, "red coat"), lambda s: s.notes() == {("identity", 4): "red coat"}),
}


@pytest.mark.parametrize("name", list(EDIT_CASES))
def test_every_edit_kind_round_trips_through_apply_undo_redo(store, name):
    edit, check = EDIT_CASES[name]
    before = store.dump()
    edit_id = store.apply(edit)
    after = store.dump()
    assert check(store)
    assert after != before
    record = store.record(edit_id)
    assert record.edit == edit and record.status == "applied" and record.result["changed"] > 0

    undone = store.undo()
    assert undone.id == edit_id and undone.status == "undone"
    assert store.dump() == before
    assert not check(store)

    redone = store.redo()
    assert redone.id == edit_id and redone.status == "applied"
    assert store.dump() == after
    assert check(store)
    assert store.undo() is not None and store.undo() is None  # nothing older to undo
    assert store.content_hash() == store.recompute_hash()


def test_clearing_flags_and_emptying_a_note_remove_them(store):
    store.apply(FlagFrames("cam1/person003", (1, 2), "bad_crop"))
    store.apply(FlagTracklets("cam1/person003", "exclude"))
    store.apply(SetNote("tracklet", "cam1/person003", "blurry"))
    store.apply(FlagFrames("cam1/person003", 1, "bad_crop", clear=True))
    store.apply(FlagTracklets("cam1/person003", "exclude", clear=True))
    store.apply(SetNote("tracklet", "cam1/person003", ""))
    assert store.frame_flags_of("cam1/person003") == {2: {"bad_crop"}}
    assert store.tracklet_flags_of("cam1/person003") == frozenset()
    assert store.note("tracklet", "cam1/person003") == ""


def test_merge_then_undo_restores_the_exact_previous_state(store):
    # Make the state non-trivial first: a relabel, a split, flags and notes on the identities.
    store.apply(Relabel(MISLABELLED, 5))
    split_id = store.apply(Split(["cam2/person004"]))
    new_pid = store.record(split_id).result["pid"]
    store.apply(SetNote("identity", 5, "person five"))
    store.apply(FlagTracklets("cam1/person006", "distractor"))
    before = store.dump()
    hash_before = store.content_hash()

    merge_id = store.apply(Merge(keep=new_pid, absorb=5))
    assert set(store.members(new_pid)) == {"cam2/person004", "cam1/person005", "cam2/person005", MISLABELLED}
    assert store.record(merge_id).result["tracklets"] == 3

    store.undo()
    assert store.dump() == before
    assert store.content_hash() == hash_before == store.recompute_hash()
    # The merge stays in the history, undone, and can be redone.
    assert [r.status for r in store.history()][-1] == "undone"


def test_split_gets_a_pid_used_nowhere_else_and_redo_keeps_it(store, dataset):
    store.apply(SetNote("identity", 40, "an identity only a note mentions"))
    edit_id = store.apply(Split(["cam1/person001"]))
    pid = store.record(edit_id).result["pid"]
    assert pid == 41  # above the dataset's pids (max 6) and every identity a note names
    assert pid not in {t.pid for t in dataset.tracklets}
    store.undo()
    assert store.pid_of("cam1/person001") == 1
    store.redo()
    assert store.pid_of("cam1/person001") == pid


def test_relabelling_back_to_the_dataset_label_leaves_no_override(store):
    store.apply(Relabel(MISLABELLED, 5))
    store.apply(Relabel(MISLABELLED, 6))
    assert store.labels() == {}


def test_a_new_edit_drops_the_redo_stack_but_keeps_it_in_the_history(store):
    a = store.apply(FlagTracklets("cam1/person001", "junk"))
    b = store.apply(FlagTracklets("cam1/person002", "junk"))
    store.undo()
    c = store.apply(FlagTracklets("cam1/person003", "junk"))
    assert not store.can_redo() and store.redo() is None
    assert [(r.id, r.status) for r in store.history()] == [(a, "applied"), (b, "dropped"), (c, "applied")]
    assert [(r.id, r.status) for r in store.history(include_dropped=False)] == [(a, "applied"), (c, "applied")]
    assert [(e, act) for e, act, _ in store.events()] == [(a, "apply"), (b, "apply"), (b, "undo"), (c, "apply")]
    assert set(store.tracklet_flags()) == {"cam1/person001", "cam1/person003"}


def test_revert_and_reapply_follow_the_undo_stack_like_a_qundostack(store):
    a = store.apply(Relabel(MISLABELLED, 5))
    b = store.apply(FlagFrames(MISLABELLED, 0, "occluded"))
    with pytest.raises(AnnotationError, match=f"edit {b} must be undone first"):
        store.revert(a)
    assert store.revert(b).status == "undone"
    with pytest.raises(AnnotationError, match=f"edit {b} must be redone first"):
        store.reapply(a)
    store.revert(a)
    assert store.labels() == {} and store.frame_flags() == {}
    store.reapply(a)
    store.reapply(b)
    assert store.labels() == {MISLABELLED: 5} and store.frame_flags_of(MISLABELLED) == {0: {"occluded"}}
    with pytest.raises(AnnotationError, match="no such edit"):
        store.revert(999)


def test_version_changes_on_every_edit_undo_and_redo(store):
    seen = [store.version()]
    store.apply(SetNote("identity", 1, "x"))
    seen.append(store.version())
    store.undo()
    seen.append(store.version())
    store.redo()
    seen.append(store.version())
    assert len(set(seen)) == 4
    assert store.revision == 3
    # The content part is the state's: equal before the edit and after its undo.
    assert seen[0].split("-")[1] == seen[2].split("-")[1]


def test_refused_edits_change_nothing(store):
    version = store.version()
    with pytest.raises(AnnotationError, match="not in dataset toy"):
        store.apply(Relabel("cam9/nobody", 3))
    with pytest.raises(AnnotationError, match="frame 5 is out of range"):
        store.apply(FlagFrames("cam1/person001", (0, 5), "occluded"))  # 5 frames: 0..4
    with pytest.raises(AnnotationError, match="identity 99 has no tracklets"):
        store.apply(Merge(keep=1, absorb=99))
    with pytest.raises(AnnotationError, match="unknown flag 'blurry'"):
        FlagFrames("cam1/person001", 0, "blurry")
    with pytest.raises(AnnotationError, match="cannot be merged with itself"):
        Merge(3, 3)
    assert store.version() == version and store.history() == [] and store.dump()["frame_flags"] == []


def test_history_and_undo_survive_closing_the_store(tmp_path, dataset):
    path = tmp_path / "ann.sqlite"
    with AnnotationStore(path) as s:
        s.attach(dataset)
        first = s.apply(Relabel(MISLABELLED, 5))
        s.apply(FlagFrames(MISLABELLED, 1, "wrong_person"))
        state = s.dump(history=True)
    with AnnotationStore(path) as s:
        assert s.dump(history=True) == state
        assert s.dataset_fingerprint == dataset.fingerprint
        s.undo()
        assert s.undo().id == first
        assert s.labels() == {}


def test_open_names_the_file_after_the_dataset_and_checks_the_fingerprint(tmp_path, dataset):
    ws = Workspace(tmp_path / "ws")
    with AnnotationStore.for_dataset(ws, dataset) as s:
        assert s.path == ws.annotations_dir / "toy-fp-test-0001.sqlite"
        assert s.attached
    other = make_dataset(tmp_path / "toy", fingerprint="fp-other")
    with pytest.raises(AnnotationError, match="fingerprint fp-test-0001, not fp-other"):
        AnnotationStore(ws.annotations_dir / "toy-fp-test-0001.sqlite", "fp-other")
    with AnnotationStore(ws.annotations_dir / "toy-fp-test-0001.sqlite") as s, pytest.raises(
        AnnotationError, match="fingerprint fp-test-0001, not fp-other"
    ):
        s.attach(other)


def test_a_store_refuses_a_dataset_whose_labels_differ(tmp_path, dataset):
    with AnnotationStore(tmp_path / "ann.sqlite") as s:
        s.attach(dataset)
        changed = make_dataset(tmp_path / "toy")
        changed.tracklets.pop()
        with pytest.raises(AnnotationError, match=r"missing tracklets \['cam2/person006b'\]"):
            s.attach(changed)


def test_files_that_are_not_stores_are_refused_with_the_reason(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(AnnotationError, match="junk.sqlite: is not an annotation store"):
        AnnotationStore(junk)

    foreign = tmp_path / "foreign.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(AnnotationError, match="not a reidviewer annotation store"):
        AnnotationStore(foreign)

    newer = tmp_path / "newer.sqlite"
    con = sqlite3.connect(newer)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(AnnotationError, match="written by a newer reidviewer"):
        AnnotationStore(newer)


def test_store_file_is_wal_with_foreign_keys_and_a_schema_version(store):
    con = sqlite3.connect(store.path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        con.close()
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute("INSERT INTO labels (key, pid) VALUES ('no/such/tracklet', 1)")


def _busy_store(store):
    store.apply(Relabel(MISLABELLED, 5))
    store.apply(Merge(keep=5, absorb=4))
    store.apply(Split(["cam1/person001"]))
    store.apply(FlagFrames("cam1/person002", (0, 3), "occluded"))
    store.apply(FlagFrames("cam1/person002", 3, "bad_crop"))
    store.apply(FlagTracklets("cam2/person003", "distractor"))
    store.apply(SetNote("tracklet", "cam2/person003", 'a "quoted", comma\nand newline note: ünïcode'))
    store.apply(SetNote("identity", 5, "merged with 4"))
    store.undo()
    store.undo()
    store.redo()  # leaves one undone edit on the redo stack
    store.apply(FlagTracklets("cam1/person001", "exclude"))  # ... which this drops
    store.apply(FlagTracklets("cam1/person006", "junk"))
    store.undo()  # and one undone edit that stays redoable


def test_json_export_import_into_a_fresh_store_is_identical(tmp_path, store, dataset):
    _busy_store(store)
    first = export_json(store, tmp_path / "out" / "a.json")
    with AnnotationStore(tmp_path / "fresh.sqlite") as fresh:  # not attached: the export carries the labels
        import_json(fresh, first)
        second = export_json(fresh, tmp_path / "out" / "b.json")
        assert first.read_bytes() == second.read_bytes()
        assert fresh.version() == store.version()
        assert fresh.content_hash() == fresh.recompute_hash()
        # The imported history works: redo the pending edit, undo back through the merge.
        assert fresh.redo().edit == FlagTracklets(("cam1/person006",), "junk")
        assert fresh.pid_of("cam1/person004") == 5
        while fresh.can_undo():
            fresh.undo()
        assert fresh.labels() == {} and fresh.frame_flags() == {} and fresh.notes() == {}
    doc = json.loads(first.read_text())
    assert doc["format"] == "reidviewer-annotations"
    assert [e["status"] for e in doc["edits"]] == ["applied"] * 7 + ["dropped", "applied", "undone"]


def test_json_import_refuses_a_non_empty_store_and_bad_files(tmp_path, store, dataset):
    _busy_store(store)
    path = export_json(store, tmp_path / "a.json")
    with pytest.raises(AnnotationError, match="already holds annotations"):
        import_json(store, path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with AnnotationStore(tmp_path / "fresh.sqlite") as fresh:
        with pytest.raises(AnnotationError, match=r"bad.json: is not valid JSON \(line 1"):
            import_json(fresh, bad)
        bad.write_text('{"format": "something-else"}')
        with pytest.raises(AnnotationError, match="not a reidviewer annotation export"):
            import_json(fresh, bad)
        doc = json.loads(path.read_text())
        doc["frame_flags"].append(["cam9/nobody", 0, "occluded"])
        bad.write_text(json.dumps(doc))
        with pytest.raises(AnnotationError, match=r"bad.json: frame_flags\[\d+\]: names tracklet .cam9/nobody."):
            import_json(fresh, bad)
        assert fresh.dump()["base"] == []  # nothing half-imported


def test_frame_flag_csv_round_trips_as_one_undoable_edit(tmp_path, store, dataset):
    _busy_store(store)
    csv_path = export_frame_flags_csv(store, tmp_path / "flags.csv")
    assert csv_path.read_text().splitlines() == [
        "tracklet_key,frame,flag",
        "cam1/person002,0,occluded",
        "cam1/person002,3,bad_crop",
        "cam1/person002,3,occluded",
    ]
    with AnnotationStore(tmp_path / "fresh.sqlite") as fresh:
        fresh.attach(dataset)
        edit_id = import_frame_flags_csv(fresh, csv_path)
        assert frame_flags_csv(fresh) == csv_path.read_text()
        assert fresh.frame_flags() == store.frame_flags()
        assert fresh.undo().id == edit_id and fresh.frame_flags() == {}


def test_frame_flag_csv_errors_name_the_line(tmp_path, store):
    bad = tmp_path / "flags.csv"
    bad.write_text("tracklet_key,frame,flag\ncam1/person001,0,occluded\ncam1/person001,x,occluded\n")
    with pytest.raises(AnnotationError, match="flags.csv: line 3: frame 'x' is not an integer"):
        import_frame_flags_csv(store, bad)
    bad.write_text("tracklet_key,frame,flag\ncam1/person001,0,smudged\n")
    with pytest.raises(AnnotationError, match="line 2: frame flags: unknown flag 'smudged'"):
        import_frame_flags_csv(store, bad)
    bad.write_text("tracklet_key,frame,flag\ncam1/person001,99,occluded\n")
    with pytest.raises(AnnotationError, match="flags.csv: flag frames: frame 99 is out of range"):
        import_frame_flags_csv(store, bad)
    assert store.history() == []


def test_an_older_store_is_backed_up_then_migrated(tmp_path, dataset, monkeypatch):
    import reidviewer.annotations.store as store_module
    from reidviewer.annotations.schema import MIGRATIONS

    path = tmp_path / "ann.sqlite"
    with AnnotationStore(path) as s:
        s.attach(dataset)
        s.apply(Relabel(MISLABELLED, 5))
        state = s.dump(history=True)
    # Pretend this code knows a schema 2 that adds a table.
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(
        store_module, "MIGRATIONS", {**MIGRATIONS, SCHEMA_VERSION: "CREATE TABLE reviewers (name TEXT PRIMARY KEY);"}
    )
    with AnnotationStore(path) as s:
        assert s.dump(history=True) == state
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert s.conn.execute("SELECT COUNT(*) FROM reviewers").fetchone()[0] == 0
    backup = tmp_path / f"ann.v{SCHEMA_VERSION}.bak.sqlite"
    con = sqlite3.connect(backup)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert con.execute("SELECT key, pid FROM labels").fetchall() == [(MISLABELLED, 5)]
    finally:
        con.close()


def test_a_store_that_cannot_be_locked_opens_read_only_and_says_why(tmp_path, dataset):
    path = tmp_path / "ann.sqlite"
    with AnnotationStore(path) as s:
        s.attach(dataset)
    (tmp_path / "ann.sqlite.lock").unlink()
    (tmp_path / "ann.sqlite.lock").mkdir()  # stands in for a folder the user cannot write
    with AnnotationStore(path) as s:
        assert s.read_only and "cannot create the lock file ann.sqlite.lock" in s.mode_reason
        assert s.pid_of(MISLABELLED) == 6
    with pytest.raises(AnnotationError, match="does not exist"):
        AnnotationStore(tmp_path / "missing.sqlite", mode="read")
