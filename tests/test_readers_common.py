"""What all readers share: layout recognition, frame decoding errors, ``reidviewer info``."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from fixtures_datasets import frame_bytes, make_ilidsvid

from reidviewer.cli import main
from reidviewer.data.frames import read_frame
from reidviewer.data.registry import available_readers, detect_dataset, get_reader, open_dataset
from reidviewer.errors import DatasetError, FrameError


def test_all_readers_registered_with_their_protocols():
    names = available_readers()
    for name, protocols in [
        ("ilidsvid", ("standard",)),
        ("prid2011", ("ran", "wang")),
        ("mars", ("torchreid", "official")),
        ("dukevideo", ("standard",)),
        ("folder", ("standard",)),
    ]:
        assert name in names
        reader = get_reader(name)
        assert reader.protocols == protocols and reader.description
    assert get_reader("folder").priority < get_reader("ilidsvid").priority


def test_unrecognised_layout_names_the_folder_and_the_layouts(tmp_path):
    (tmp_path / "stuff" / "images").mkdir(parents=True)
    with pytest.raises(DatasetError) as err:
        open_dataset(tmp_path / "stuff")
    msg = str(err.value)
    assert err.value.path == tmp_path / "stuff" and "unrecognised dataset layout" in msg
    assert "i-LIDS-VID/sequences" in msg and "multi_shot" in msg and "query_IDX.mat" in msg


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        open_dataset(tmp_path / "nope")


@pytest.mark.parametrize("name", ["ilidsvid", "prid2011", "mars", "dukevideo", "folder"])
def test_wrong_reader_for_a_folder_names_the_path(tmp_path, name):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as err:
        open_dataset(tmp_path / "empty", name)
    assert str(tmp_path / "empty") in str(err.value)


def test_reader_import_stays_cheap():
    code = (
        "import sys, reidviewer.data.readers, reidviewer.data.registry as r; r.available_readers(); "
        "print(sorted(m for m in ('torch', 'scipy', 'PySide6') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- read_frame


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def test_read_frame_rgb_order(tmp_path):
    p = tmp_path / "f.png"
    p.write_bytes(frame_bytes(200))
    img = read_frame(p)
    assert img.dtype == np.uint8 and img.shape == (16, 8, 3)
    assert tuple(img[0, 0]) == (55, (200 * 7) % 256, 200)  # RGB: red = 255 - v, blue = v


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty file"),
        (frame_bytes(3)[:40], "truncated PNG"),
        (frame_bytes(3, ".jpg", (64, 32))[:200], "truncated JPEG"),
        (b"hello, I am a text file\n" * 4, "cannot be decoded"),
    ],
    ids=["zero-byte", "truncated-png", "truncated-jpeg", "text"],
)
def test_read_frame_bad_files_name_the_file(tmp_path, data, words):
    p = tmp_path / "frame.png"
    p.write_bytes(data)
    with pytest.raises(FrameError) as err:
        read_frame(p)
    assert err.value.path == p and words in str(err.value)


def test_read_frame_missing_file(tmp_path):
    with pytest.raises(FrameError, match="not found"):
        read_frame(tmp_path / "gone.png")


def test_read_frame_converts_gray_rgba_and_16bit(tmp_path):
    gray = np.full((6, 4), 77, np.uint8)
    (tmp_path / "g.png").write_bytes(_png(gray))
    img = read_frame(tmp_path / "g.png")
    assert img.shape == (6, 4, 3) and img.dtype == np.uint8 and (img == 77).all()

    bgra = np.zeros((6, 4, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 128
    (tmp_path / "a.png").write_bytes(_png(bgra))
    img = read_frame(tmp_path / "a.png")
    assert img.shape == (6, 4, 3) and tuple(img[0, 0]) == (30, 20, 10)

    deep = np.full((6, 4, 3), 0, np.uint16)
    deep[..., 2] = 0xABCD  # red in OpenCV's BGR order
    (tmp_path / "d.png").write_bytes(_png(deep))
    img = read_frame(tmp_path / "d.png")
    assert img.dtype == np.uint8 and tuple(img[0, 0]) == (0xAB, 0, 0)


# --------------------------------------------------------------------------- reidviewer info


def test_cli_info_json_ilidsvid(tmp_path, capsys):
    root = make_ilidsvid(tmp_path / "ilids-vid", range(1, 7), lengths=3)
    assert main(["info", "--root", str(root), "--json", "--workspace", str(tmp_path / "ws")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "ilidsvid" and out["identities"] == 6 and out["tracklets"] == 12
    assert out["frames"] == 36 and out["cameras"] == 2 and len(out["splits"]) == 10
    assert out["splits"][0]["query"] == {"identities": 3, "tracklets": 3}


def test_cli_info_table(tmp_path, capsys):
    root = make_ilidsvid(tmp_path / "ilids-vid", range(1, 5), lengths=3, with_splits=False)
    assert main(["info", "--root", str(root), "--workspace", str(tmp_path / "ws")]) == 0
    out = capsys.readouterr().out
    assert "ilidsvid" in out and "note:" in out and "random" in out


def test_cli_info_error_exits_2_naming_the_path(tmp_path, capsys):
    root = make_ilidsvid(tmp_path / "ilids-vid", range(1, 5), ls_set=np.full((10, 4), 0.5))
    assert main(["info", "--root", str(root), "--workspace", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reidviewer: error:") and "train_test_splits_ilidsvid.mat" in err
    assert "Traceback" not in err
    (tmp_path / "plain").mkdir()
    assert main(["info", "--root", str(tmp_path / "plain"), "--workspace", str(tmp_path / "ws")]) == 2
    assert str(tmp_path / "plain") in capsys.readouterr().err


def test_detect_prefers_specific_layouts_over_folder(tmp_path):
    root = make_ilidsvid(tmp_path / "x", range(1, 3))
    (root / "query").mkdir()
    (root / "gallery").mkdir()
    assert detect_dataset(root) == "ilidsvid"
