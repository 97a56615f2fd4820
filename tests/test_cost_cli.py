"""``reidviewer info`` and ``reidviewer evaluate`` say what preprocessing and features cost before paying it (#19)."""
from __future__ import annotations

import re

from reidviewer.cli import main
from reidviewer.workspace import Workspace


def test_info_gives_the_time_to_evaluate_and_then_the_rate_measured_here(synth_root, random_checkpoint, tmp_path,
                                                                          capsys, monkeypatch):
    import reidviewer.data.cache as cache_mod

    # The tiny set would be preprocessed in-process and too briefly to time; make it a pool run.
    monkeypatch.setattr(cache_mod, "INLINE_FRAMES", 0)
    monkeypatch.setattr(cache_mod, "RATE_MIN_FRAMES", 1)
    ws = str(tmp_path / "ws")
    assert main(["info", "--root", str(synth_root), "--workspace", ws]) == 0
    out = capsys.readouterr().out
    assert "0% cached already" in out
    assert re.search(r"preprocessing time: (under a minute|about \d+ min) to evaluate split 0, "
                     r".* for all that is not cached yet, at 1,500 frames/s \(assumed: none measured here yet\)",
                     out), out

    # evaluate announces the cost first (stderr), then pays it, measuring this machine's rate
    assert main(["evaluate", "--root", str(synth_root), "--checkpoint", str(random_checkpoint),
                 "--workspace", ws, "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    announced = re.search(r"split 0: preprocessing ([\d,]+) frames \(([\d.]+) GB", err)
    done = re.search(r"preprocessing: ([\d,]+) frames in", err)
    assert announced and done and announced[1] == done[1], err
    assert err.index("split 0: preprocessing") < err.index("preprocessing: ")
    # ... and the frames the network then embeds, at the rate assumed for a CPU
    embedding = re.search(r"then embedding ([\d,]+) frames on the CPU: .* at 1,500 frames/s \(assumed", err)
    embedded = re.search(r"features: \d+ tracklets, ([\d,]+) frames in", err)
    assert embedding and embedded and embedding[1] == embedded[1], err
    import reidviewer.engine.evaluate as evaluate_mod

    assert int(embedded[1].replace(",", "")) < evaluate_mod.FEATURE_RATE_MIN_FRAMES
    assert evaluate_mod.measured_feature_rate(Workspace(ws), "cpu") is None  # too short a run to time

    assert main(["info", "--root", str(synth_root), "--workspace", ws]) == 0
    out = capsys.readouterr().out
    assert "preprocessing time: none to evaluate split 0" in out
    assert "(measured in this workspace)" in out

    # with the results in the workspace, evaluate has nothing to announce
    assert main(["evaluate", "--root", str(synth_root), "--checkpoint", str(random_checkpoint),
                 "--workspace", ws, "--device", "cpu"]) == 0
    assert "split 0:" not in capsys.readouterr().err


def test_with_the_frames_cached_evaluate_announces_the_features_at_the_rate_measured_here(
        synth_root, random_checkpoint, tmp_path, capsys, monkeypatch):
    """A new checkpoint on a cached dataset still costs its features: minutes at MARS scale."""
    import reidviewer.engine.evaluate as evaluate_mod

    monkeypatch.setattr(evaluate_mod, "FEATURE_RATE_MIN_FRAMES", 1)
    ws = str(tmp_path / "ws")
    args = ["evaluate", "--root", str(synth_root), "--checkpoint", str(random_checkpoint), "--workspace", ws,
            "--device", "cpu"]
    assert main(args) == 0
    capsys.readouterr()
    rate = evaluate_mod.measured_feature_rate(Workspace(ws), "cpu")  # the first run measured it
    assert rate is not None and evaluate_mod.measured_feature_rate(Workspace(ws), "cuda") is None
    for results in (tmp_path / "ws" / "results").glob("*.npz"):
        results.unlink()  # as for another checkpoint: the frames are cached, the features are not
    assert main(args) == 0
    err = capsys.readouterr().err
    line = next(t for t in err.splitlines() if t.startswith("split 0:"))
    assert "preprocessing" not in line, line
    announced = re.match(r"split 0: embedding ([\d,]+) frames on the CPU: .* at ([\d,]+) frames/s "
                         r"\(measured in this workspace\)", line)
    embedded = re.search(r"features: \d+ tracklets, ([\d,]+) frames in", err)
    assert announced and embedded and announced[1] == embedded[1], err
    assert announced[2] == f"{round(rate):,}"


def test_the_cost_check_of_a_warm_evaluate_does_not_import_torch(synth_root, random_checkpoint, tmp_path):
    """A warm ``evaluate`` takes about half a second; importing torch for the check would double it."""
    import subprocess
    import sys

    ws = tmp_path / "ws"
    assert main(["evaluate", "--root", str(synth_root), "--checkpoint", str(random_checkpoint),
                 "--workspace", str(ws)]) == 0
    code = (
        "import sys\n"
        "from reidviewer.data.registry import open_dataset\n"
        "from reidviewer.workspace import Workspace\n"
        "from reidviewer.engine.evaluate import evaluation_cost\n"
        f"ws = Workspace({str(ws)!r})\n"
        f"ds = open_dataset({str(synth_root)!r}, workspace=ws)\n"
        f"assert evaluation_cost(ds, 0, {str(random_checkpoint)!r}, ws) is None\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_file_that_is_no_checkpoint_gets_the_usual_message_not_one_from_the_cost_check(synth_root, tmp_path, capsys):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    rc = main(["evaluate", "--root", str(synth_root), "--checkpoint", str(bad), "--workspace", str(tmp_path / "ws")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a checkpoint" in err and "model.pt" in err
    assert "split 0:" not in err


def test_the_frames_to_embed_are_what_extract_embeds_and_every_test_view_counts(synth_root, tmp_path):
    from reidviewer.data.registry import open_dataset
    from reidviewer.data.transforms import tta_params
    from reidviewer.engine.evaluate import EvalSettings, frames_to_embed

    ds = open_dataset(synth_root, workspace=Workspace(tmp_path / "ws"))
    sp = ds.split(0)
    test = set(int(i) for i in sp.query) | set(int(i) for i in sp.gallery)
    capped = EvalSettings(max_frames=16)
    assert frames_to_embed(ds, 0, capped) == sum(min(len(ds.tracklets[i]), 16) for i in test)
    assert frames_to_embed(ds, 0, EvalSettings(max_frames=16, tta=True)) == len(tta_params()) * frames_to_embed(
        ds, 0, capped)
