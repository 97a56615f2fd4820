"""``reidviewer import`` / ``results_from_arrays``: another model's output as an ordinary results file."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

import reidviewer
from reidviewer.cli import main
from reidviewer.data.registry import open_dataset
from reidviewer.engine.evaluate import compute_results
from reidviewer.engine.importer import ImportFileError, import_features, load_npz
from reidviewer.engine.models import model_ref
from reidviewer.engine.results import Results
from reidviewer.errors import ReidViewerError

DOC = Path(__file__).resolve().parents[1] / "docs" / "inspect-your-model.md"


@pytest.fixture(scope="module")
def native(synth_root, random_checkpoint, tmp_path_factory):
    """The dataset and a RAN checkpoint's native results on it."""
    from reidviewer.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("native-ws"))
    ds = open_dataset(synth_root, "synthwalk", None, ws)
    return ds, compute_results(ds, 0, random_checkpoint, ws)


def same_ranking(a: Results, b: Results) -> None:
    for name in ("query_indices", "gallery_indices", "query_pids", "gallery_pids", "first_rank", "valid",
                 "match_offsets", "match_rows", "match_ranks"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.ap, b.ap)
    np.testing.assert_array_equal(a.cmc, b.cmc)
    assert a.mAP == b.mAP and a.metrics()["mINP"] == b.metrics()["mINP"]
    for q in range(a.num_queries):
        np.testing.assert_array_equal(a.ranked(q)[0], b.ranked(q)[0])


def run_import(root, ws, npz, name, *extra) -> int:
    return main(["import", "--root", str(root), "--workspace", str(ws.root), "--features", str(npz),
                 "--name", name, *extra])


def test_exported_features_import_to_identical_ranks(native, synth_root, workspace, tmp_path):
    ds, r = native
    npz = tmp_path / "ran.npz"
    np.savez(npz, qf=r.query_features, gf=r.gallery_features)  # the split's standard order
    assert run_import(synth_root, workspace, npz, "ran-copy") == 0
    got = compute_results(ds, 0, model_ref("imported:ran-copy"), workspace)
    same_ranking(got, r)
    np.testing.assert_array_equal(got.distmat, r.distmat)
    assert got.query_keys == r.query_keys and got.settings["checkpoint"] == "ran-copy"
    # An ordinary results file: Results.load reads it, evaluate reports the same numbers.
    again = Results.load(next(workspace.results_dir.glob("*.npz")))
    same_ranking(again, r)


def test_ids_in_any_order_and_the_library_call(native):
    ds, r = native
    rng = np.random.default_rng(0)
    pq, pg = rng.permutation(r.num_queries), rng.permutation(r.num_gallery)
    got = reidviewer.results_from_arrays(
        ds, 0, qf=r.query_features[pq], gf=r.gallery_features[pg],
        q_ids=np.array(r.query_keys)[pq], g_ids=np.array([k + "/" for k in r.gallery_keys])[pg])
    same_ranking(got, r)


def test_distance_matrix_import_gives_identical_ranks(native, synth_root, workspace, tmp_path):
    ds, r = native
    rng = np.random.default_rng(1)
    pq, pg = rng.permutation(r.num_queries), rng.permutation(r.num_gallery)
    npz = tmp_path / "dist.npz"
    np.savez(npz, distmat=r.distmat[pq][:, pg], q_ids=np.array(r.query_keys)[pq],
             g_ids=np.array(r.gallery_keys)[pg])
    assert run_import(synth_root, workspace, npz, "ran-dist") == 0
    got = compute_results(ds, 0, model_ref("imported:ran-dist"), workspace)
    same_ranking(got, r)
    assert got.query_features.shape == (r.num_queries, 0)


def test_per_frame_weights_one_row_and_all_iterations(native):
    ds, r = native
    order = list(r.query_indices) + list(r.gallery_indices)
    for rows in (slice(-1, None), slice(None)):
        traces = [r.attention(int(i))[rows] for i in order]
        offsets = np.concatenate([[0], np.cumsum([t.shape[1] for t in traces])])
        flat = np.concatenate(traces, axis=1)
        got = reidviewer.results_from_arrays(ds, 0, qf=r.query_features, gf=r.gallery_features,
                                             weights=flat[0] if flat.shape[0] == 1 else flat, weights_index=offsets)
        assert got.attention_iterations == traces[0].shape[0]
        for i in order:
            np.testing.assert_array_equal(got.attention(int(i)), r.attention(int(i))[rows])


def test_cli_evaluate_reads_the_imported_model(native, synth_root, workspace, tmp_path, capsys):
    ds, r = native
    npz = tmp_path / "m.npz"
    np.savez(npz, qf=r.query_features, gf=r.gallery_features)
    run_import(synth_root, workspace, npz, "m")
    capsys.readouterr()
    assert main(["evaluate", "--root", str(synth_root), "--workspace", str(workspace.root),
                 "--model", "imported:m", "--json", str(tmp_path / "m.json")]) == 0
    import json

    out = json.loads((tmp_path / "m.json").read_text())
    assert out["rank1"] == r.metrics()["rank1"] and out["mAP"] == r.metrics()["mAP"]


# ---------------------------------------------------------------------- MARS: torchreid's order


@pytest.fixture(scope="module")
def mars_root(tmp_path_factory):
    from reidviewer.data.synthwalk import SynthConfig, generate

    root = tmp_path_factory.mktemp("mars") / "mars"
    generate(root, SynthConfig(ids=8, seed=5, layout="mars", cameras=3, min_tracklets=4, max_tracklets=6,
                               min_len=4, max_len=8, height=64, width=32, supersample=1, distractors=2, junk=2,
                               image_format="jpg"), workers=1)
    return root


def torchreid_mars_keys(root: Path) -> tuple[list[str], list[str]]:
    """Query and gallery tracklets in the order torchreid's ``Mars`` dataset lists them, computed
    from the info files as torchreid does (query_IDX rows; the other test rows, junk pid -1 skipped)."""
    import scipy.io

    names = (root / "info" / "test_name.txt").read_text().split()
    tracks = scipy.io.loadmat(str(root / "info" / "tracks_test_info.mat"))["track_test_info"]
    query_idx = scipy.io.loadmat(str(root / "info" / "query_IDX.mat"))["query_IDX"].squeeze() - 1
    gallery_idx = [i for i in range(len(tracks)) if i not in set(query_idx.tolist())]

    def keys(rows):
        out = []
        for start, _end, pid, _cam in tracks[rows]:
            if pid == -1:
                continue  # torchreid: "junk images are just ignored"
            first = names[start - 1]
            out.append(f"bbox_test/{first[:4]}/{first[:11]}")
        return out

    return keys(query_idx), keys(gallery_idx)


def test_mars_torchreid_order_without_ids_matches_the_keys(mars_root, workspace, tmp_path):
    ds = open_dataset(mars_root, "mars", None, workspace)
    assert ds.protocol == "torchreid"
    q_keys, g_keys = torchreid_mars_keys(mars_root)
    rng = np.random.default_rng(2)
    feat = {k: rng.normal(size=16).astype(np.float32) for k in q_keys + g_keys}
    npz = tmp_path / "torchreid.npz"
    np.savez(npz, qf=np.stack([feat[k] for k in q_keys]), gf=np.stack([feat[k] for k in g_keys]))
    got, _ = import_features(ds, 0, npz, workspace, name="tr")
    assert got.query_keys == q_keys and got.gallery_keys == g_keys
    by_ids = reidviewer.results_from_arrays(ds, 0, qf=np.stack([feat[k] for k in q_keys[::-1]]),
                                            gf=np.stack([feat[k] for k in g_keys[::-1]]),
                                            q_ids=np.array(q_keys[::-1]), g_ids=np.array(g_keys[::-1]))
    same_ranking(by_ids, got)


# ---------------------------------------------------------------------- bad files


def bad_cases(r):
    qf, gf = r.query_features, r.gallery_features
    nan = qf.copy()
    nan[1, 2] = np.nan
    qk, gk = np.array(r.query_keys), np.array(r.gallery_keys)
    return {
        "neither": ({"q_ids": qk, "g_ids": gk}, "neither features"),
        "both": ({"qf": qf, "gf": gf, "distmat": r.distmat}, "both features"),
        "only qf": ({"qf": qf}, "has qf but not gf"),
        "nan": ({"qf": nan, "gf": gf}, r"qf holds 1 NaN or infinite value\(s\), the first at \(1, 2\)"),
        "inf distmat": ({"distmat": np.where(r.distmat > 0, np.inf, 0)}, "distmat holds"),
        "empty": ({"qf": qf[:, :0], "gf": gf[:, :0]}, "qf is empty"),
        "1-D": ({"qf": qf[0], "gf": gf}, "qf has shape"),
        "dims": ({"qf": qf, "gf": gf[:, :-1]}, "qf has 128 dimensions but gf has 127"),
        "rows": ({"qf": qf[:-1], "gf": gf}, "query rows, but split 0 of synthwalk has"),
        "distmat shape": ({"distmat": r.distmat[:, :-1]}, "gallery rows, but split 0"),
        "strings": ({"qf": qk[:, None], "gf": gf}, "expected numbers"),
        "unknown id": ({"qf": qf, "gf": gf, "q_ids": np.array(["nobody/here"] + list(qk[1:])), "g_ids": gk},
                       r"q_ids\[0\] = 'nobody/here' is not a tracklet"),
        "missing id": ({"qf": qf[:-1], "gf": gf, "q_ids": qk[:-1], "g_ids": gk}, "q_ids lacks 1 of the"),
        "gallery id as query": ({"qf": qf, "gf": gf, "q_ids": np.array([gk[0]] + list(qk[1:])), "g_ids": gk},
                                "not query tracklets of split 0"),
        "twice": ({"qf": qf, "gf": gf, "q_ids": np.array([qk[0]] + list(qk[:-1])), "g_ids": gk}, "twice"),
        "ids count": ({"qf": qf, "gf": gf, "q_ids": qk[:-1], "g_ids": gk}, "q_ids has"),
        "one id list": ({"qf": qf, "gf": gf, "q_ids": qk}, "q_ids and g_ids go together"),
        "ids not strings": ({"qf": qf, "gf": gf, "q_ids": np.arange(len(qk)), "g_ids": gk}, "string array"),
        "weights alone": ({"qf": qf, "gf": gf, "weights": np.ones(3)}, "weights and weights_index go together"),
        "weights index": ({"qf": qf, "gf": gf, "weights": np.ones(3), "weights_index": np.array([0, 3])},
                          "weights_index has 2 entries"),
        "weights nan": ({"qf": qf, "gf": gf, "weights": np.full(len(qk) + len(gk), np.nan),
                         "weights_index": np.arange(len(qk) + len(gk) + 1)}, "weights holds"),
        "weights too long": ({"qf": qf, "gf": gf, "weights": np.ones(1000),
                              "weights_index": np.array([0, 1000] + [1000] * (len(qk) + len(gk) - 1))},
                             "have 1000 frames, but it has"),
        "unknown array": ({"qf": qf, "gf": gf, "qfeat": qf}, "unexpected array 'qfeat'"),
    }


CASES = ["neither", "both", "only qf", "nan", "inf distmat", "empty", "1-D", "dims", "rows", "distmat shape",
         "strings", "unknown id", "missing id", "gallery id as query", "twice", "ids count", "one id list",
         "ids not strings", "weights alone", "weights index", "weights nan", "weights too long", "unknown array"]


@pytest.mark.parametrize("case", CASES)
def test_each_bad_npz_gets_one_line_naming_the_file(case, native, synth_root, workspace, tmp_path, capsys):
    _, r = native
    arrays, message = bad_cases(r)[case]
    npz = tmp_path / "bad.npz"
    np.savez(npz, **arrays)
    capsys.readouterr()
    assert run_import(synth_root, workspace, npz, "bad") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"reidviewer: error: {npz}: "), err
    assert re.search(message, err), err
    assert not list(workspace.results_dir.glob("*.npz"))


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"),
    (b"hello, not an archive", "is not an .npz archive"),
    (b"\x80\x04K\x01.", "is a Python pickle"),
])
def test_files_that_are_not_npz(content, message, tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match=message):
        load_npz(path)
    with pytest.raises(ImportFileError, match="does not exist"):
        load_npz(tmp_path / "missing.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(ImportFileError, match="single .npy"):
        load_npz(tmp_path / "one.npy")


def test_a_damaged_compressed_archive_and_a_stray_member_get_a_clear_error(tmp_path):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, qf=np.random.default_rng(0).random((40, 128)), gf=np.zeros((50, 128)))
    whole = bytearray(good.read_bytes())
    whole[200:260] = bytes(60)  # inside qf's deflated data: zlib fails, the zip directory is intact
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(bytes(whole))
    with pytest.raises(ImportFileError, match="corrupt or unreadable .npz"):
        load_npz(damaged)
    stray = tmp_path / "stray.npz"
    with zipfile.ZipFile(stray, "w") as z:
        with z.open("qf.npy", "w") as member:
            np.save(member, np.zeros((40, 128)))
        z.writestr("notes.txt", b"trained on MARS")
    with pytest.raises(ImportFileError, match="unexpected array 'notes.txt'"):
        load_npz(stray)


class _Boom:
    """Unpickling this creates a file: the proof that code ran."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_a_planted_pickle_inside_the_npz_runs_no_code(native, synth_root, workspace, tmp_path, capsys):
    _, r = native
    target = tmp_path / "pwned"
    payload = np.empty(1, dtype=object)
    payload[0] = _Boom(str(target))
    npz = tmp_path / "evil.npz"
    np.savez(npz, qf=r.query_features, gf=r.gallery_features, q_ids=payload, g_ids=np.array(r.gallery_keys))
    # The planted object really would run code if unpickled:
    import pickle

    pickle.loads(pickle.dumps(payload[0]))
    assert target.exists()
    target.unlink()

    capsys.readouterr()
    assert run_import(synth_root, workspace, npz, "evil") == 2
    err = capsys.readouterr().err
    assert "array 'q_ids' holds pickled Python objects" in err and "never unpickles" in err
    assert not target.exists()
    with pytest.raises(ReidViewerError):
        load_npz(npz)
    assert not target.exists()


def test_annotated_view_relabels_an_imported_distance_matrix(native):
    from reidviewer.engine.results import relabel_results

    ds, r = native
    got = reidviewer.results_from_arrays(ds, 0, distmat=r.distmat)
    again = relabel_results(got, ds, "v1")
    same_ranking(again, r)
    np.testing.assert_array_equal(again.distmat, r.distmat)


# ---------------------------------------------------------------------- the docs' torchreid example


def doc_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_docs_torchreid_example_runs(native, synth_root, workspace, tmp_path, monkeypatch):
    """The README section's example: dump torchreid-style features in the split order, then import."""
    torch = pytest.importorskip("torch")
    from reidviewer.engine.models import read_clip

    ds, r = native
    sp = ds.split(0)

    class FakeTorchreidModel(torch.nn.Module):
        """Frame-level model as torchreid's video engine calls it: (b*s, c, h, w) → (b*s, D)."""

        def forward(self, x):
            return x.mean(dim=(2, 3))

    def loader(indices):
        # torchreid's VideoDataset yields dicts; 'img' is (b, s, c, h, w).
        for i in indices:
            clip = read_clip(ds.tracklets[int(i)], 8, False)
            img = torch.from_numpy(clip).permute(0, 3, 1, 2).float()[None] / 255
            yield {"img": img, "pid": torch.tensor([ds.tracklets[int(i)].pid]),
                   "camid": torch.tensor([ds.tracklets[int(i)].camid])}

    monkeypatch.chdir(tmp_path)
    code = doc_blocks("python")[0]
    namespace = {"model": FakeTorchreidModel().eval(), "query_loader": list(loader(sp.query)),
                 "gallery_loader": list(loader(sp.gallery))}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    assert (tmp_path / "mymodel.npz").is_file()
    shell = [line for line in doc_blocks("sh")[0].splitlines() if line.startswith("reidviewer import")][0]
    argv = shell.split()[1:]
    argv[argv.index("--root") + 1] = str(synth_root)
    assert main(argv + ["--workspace", str(workspace.root)]) == 0
    got = compute_results(ds, 0, model_ref("imported:mymodel"), workspace)
    assert got.num_queries == r.num_queries and got.query_features.shape[1] == 3
