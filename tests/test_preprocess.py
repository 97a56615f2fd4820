"""Preprocessing (SPEC §b.1–b.2) and per-sample transforms / clip sampling (§b.3, §c.2, §e.5)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from reidviewer.data.preprocess import (
    PreprocessConfig,
    preprocess_tracklet,
    rgb_to_yuv,
    standardize,
    to_network_input,
)
from reidviewer.data.transforms import (
    CropParams,
    apply_crop,
    draw_crop,
    sample_test_clip,
    sample_train_clip,
    test_transform as centre_crop,  # not a pytest test
    train_transform,
    tta_params,
    tta_views,
)
from reidviewer.errors import FrameError
from pipeline_fixtures import moving_rgb, write_tracklet

# ---------------------------------------------------------------------------------- colour


@pytest.mark.parametrize(
    "rgb, yuv",
    [
        ((1, 1, 1), (1.0, 0.0, 0.0)),
        ((0, 0, 0), (0.0, 0.0, 0.0)),
        ((1, 0, 0), (0.299, -0.14713, 0.615)),
        ((0, 1, 0), (0.587, -0.28886, -0.51499)),
        ((0, 0, 1), (0.114, 0.436, -0.10001)),
        ((0.5, 0.5, 0.5), (0.5, 0.0, 0.0)),
    ],
)
def test_yuv_has_torch7_coefficients(rgb, yuv):
    np.testing.assert_allclose(rgb_to_yuv(np.array(rgb, dtype=np.float32)), yuv, atol=2e-5)
    # channel-first images too
    img = np.broadcast_to(np.array(rgb, np.float32)[:, None, None], (3, 2, 2))
    np.testing.assert_allclose(rgb_to_yuv(img, axis=0)[:, 1, 1], yuv, atol=2e-5)


# --------------------------------------------------------------------------- standardising


def test_standardise_each_channel_of_each_frame():
    rng = np.random.default_rng(0)
    x = (rng.random((3, 5, 16, 12)) * np.arange(1, 6)[None, :, None, None] + 7).astype(np.float32)
    x[1, 2] = 4.0  # a constant channel: zeros, never NaN
    out = standardize(x.copy())
    np.testing.assert_allclose(out.mean(axis=(2, 3)), 0, atol=1e-5)
    std = out.std(axis=(2, 3))
    assert np.all(out[1, 2] == 0)
    std[1, 2] = 1.0
    np.testing.assert_allclose(std, 1, atol=1e-4)


def test_rcn_quirk_divides_by_sqrt_of_unbiased_std():
    rng = np.random.default_rng(1)
    x = (rng.random((2, 5, 8, 6)) * 9).astype(np.float32)
    out = standardize(x.copy(), quirk=True)
    centred = x - x.mean(axis=(2, 3), keepdims=True)
    unbiased_std = x.reshape(2, 5, -1).std(axis=-1, ddof=1)
    np.testing.assert_allclose(out, centred / np.sqrt(unbiased_std)[..., None, None], rtol=1e-4, atol=1e-5)
    assert not np.allclose(out.std(axis=(2, 3)), 1, atol=0.05)  # not unit variance: the quirk


def test_network_input_channels():
    rng = np.random.default_rng(2)
    stored = rng.integers(0, 256, (4, 5, 64, 48), dtype=np.uint8)
    x = to_network_input(stored)
    assert x.dtype == np.float32 and x.shape == (4, 5, 64, 48)
    np.testing.assert_allclose(x.mean(axis=(2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(2, 3)), 1, atol=1e-4)
    # Y channel is the standardised luma of the RGB planes
    y = rgb_to_yuv(stored[:, :3].astype(np.float32) / 255, axis=1)[:, :1]
    np.testing.assert_allclose(x[:, :1], standardize(y.copy()), atol=1e-4)
    no_flow = to_network_input(stored, PreprocessConfig(use_flow=False))
    assert np.all(no_flow[:, 3:] == 0)
    np.testing.assert_array_equal(no_flow[:, :3], x[:, :3])


# --------------------------------------------------------------------------------- config


def test_config_key_is_stable_and_tracks_stored_form_only():
    base = PreprocessConfig()
    assert base.key() == PreprocessConfig().key()
    # Changing it orphans every user's cache: bump on purpose. Bumped for max_work_height
    # (MARS-size frames worked at 128×64: 2.5× faster preprocessing).
    assert base.key() == "00de10a4e5c5"
    for same in (dict(use_flow=False), dict(rcn_quirk_norm=True), dict(negate_flow_on_flip=True)):
        assert PreprocessConfig(**same).key() == base.key()
    for different in (dict(flow="farneback"), dict(lk_threshold=0.0039), dict(first_frame="copy_next"),
                      dict(height=128), dict(resize="linear"), dict(max_work_height=0)):
        assert PreprocessConfig(**different).key() != base.key()
    assert PreprocessConfig.from_dict(base.to_dict()) == base
    with pytest.raises(ValueError, match="colour"):
        PreprocessConfig.from_dict({"colour": "lab"})
    with pytest.raises(ValueError, match="flow"):
        PreprocessConfig(flow="horn")


# ------------------------------------------------------------------------ tracklet → stored


def _torch7_scale_1d(src: np.ndarray, dst_len: int) -> np.ndarray:
    """Torch7 image.scale's shrinking branch (area average with fractional edge weights)."""
    src_len = len(src)
    scale = src_len / dst_len
    out = np.zeros(dst_len)
    i0, f0 = 0, 0.0
    for d in range(dst_len):
        e = (d + 1) * scale
        i1, f1 = int(e), e - int(e)
        acc, n = (1 - f0) * src[i0], 1 - f0
        for s in range(i0 + 1, i1):
            acc, n = acc + src[s], n + 1
        if i1 < src_len:
            acc, n = acc + f1 * src[i1], n + f1
        out[d] = acc / n
        i0, f0 = i1, f1
    return out


def test_rgb_resize_matches_torch7_image_scale():
    frames = moving_rgb(2)
    stored = preprocess_tracklet(frames)
    assert stored.shape == (2, 5, 64, 48) and stored.dtype == np.uint8
    for c in range(3):
        plane = frames[1][:, :, c].astype(np.float64)
        rows = np.stack([_torch7_scale_1d(r, 48) for r in plane])
        ref = np.stack([_torch7_scale_1d(col, 64) for col in rows.T]).T
        assert np.abs(stored[1, c].astype(np.float64) - ref).max() <= 0.5 + 1e-6


def test_flow_channels_encode_motion():
    frames = moving_rgb(4, dx=2.0, dy=0.0)
    stored = preprocess_tracklet(frames)
    interior = stored[1:, :, 8:-8, 6:-6]
    assert np.median(interior[:, 4]) == 127 + 2  # G = u + 127: 2 px/frame to the right
    assert np.median(interior[:, 3]) == 127  # R = v + 127
    assert np.all(stored[0, 3:] == 127)  # first frame: zero flow
    none = preprocess_tracklet(frames, PreprocessConfig(flow="none"))
    assert np.all(none[:, 3:] == 127)
    np.testing.assert_array_equal(none[:, :3], stored[:, :3])


def test_one_frame_tracklet(tmp_path):
    notices: list[str] = []
    stored = preprocess_tracklet(moving_rgb(1), notices=notices)
    assert stored.shape == (1, 5, 64, 48) and np.all(stored[0, 3:] == 127)
    assert any("one-frame" in n for n in notices)
    x = to_network_input(stored)
    assert np.isfinite(x).all() and np.all(x[0, 3:] == 0)


def test_mixed_frame_sizes(tmp_path):
    frames = moving_rgb(3)
    frames[2] = cv2.resize(frames[2], (60, 120))
    names = write_tracklet(tmp_path, "cam1/person001", frames)
    paths = [tmp_path / n for n in names]
    notices: list[str] = []
    stored = preprocess_tracklet(paths, notices=notices)  # default: resize to the first frame's size
    assert stored.shape == (3, 5, 64, 48)
    assert any("00003.png" in n and "60×120" in n for n in notices)
    with pytest.raises(FrameError) as err:
        preprocess_tracklet(paths, PreprocessConfig(mixed_sizes="error"))
    assert err.value.path == paths[2]
    assert "60×120" in str(err.value) and "64×128" in str(err.value)


def test_undecodable_frame_is_named(tmp_path):
    names = write_tracklet(tmp_path, "t", moving_rgb(2))
    bad = tmp_path / names[1]
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10 + b"IEND\xaeB`\x82")
    with pytest.raises(FrameError) as err:
        preprocess_tracklet([tmp_path / n for n in names])
    assert err.value.path == bad


# ------------------------------------------------------------------------------- transforms


def _sequence(t: int = 5) -> np.ndarray:
    rng = np.random.default_rng(4)
    base = rng.normal(size=(5, 64, 48)).astype(np.float32)
    # frame t = the same image plus a frame constant: after the per-frame mean subtraction every
    # output frame must be identical iff the same offset and flip were used for all frames
    return np.stack([base + 10 * i for i in range(t)])


def _reference_crop(frame: np.ndarray, x: int, y: int, flip: bool, negate: bool = False) -> np.ndarray:
    f = frame[:, :, ::-1].copy() if flip else frame.copy()
    if flip and negate:
        f[4] *= -1
    c = f[:, y:y + 56, x:x + 40]
    return c - c.mean()


def test_training_crop_is_shared_by_every_frame():
    seq = _sequence()
    rng = np.random.default_rng(0)
    flips = set()
    for _ in range(20):
        out, p = train_transform(seq, rng)
        assert out.shape == (5, 5, 56, 40) and out.dtype == np.float32
        flips.add(p.flip)
        for t in range(5):
            np.testing.assert_allclose(out[t], _reference_crop(seq[t], p.x, p.y, p.flip), atol=1e-4)
            np.testing.assert_allclose(out[t], out[0], atol=1e-4)
            assert abs(out[t].mean()) < 1e-5
    assert flips == {False, True}


def test_flip_mirrors_flow_without_negating_by_default():
    seq = _sequence(2)
    p = CropParams(3, 5, True)
    out = apply_crop(seq, p)
    mirrored = _reference_crop(seq[0], 3, 5, True)
    np.testing.assert_allclose(out[0, 4], mirrored[4], atol=1e-4)
    negated = apply_crop(seq, p, negate_flow_on_flip=True)
    np.testing.assert_allclose(negated[0], _reference_crop(seq[0], 3, 5, True, negate=True), atol=1e-4)
    assert not np.allclose(negated[0, 4], out[0, 4])


def test_offsets_are_one_to_eight_and_flip_is_fair():
    rng = np.random.default_rng(7)
    draws = [draw_crop(rng) for _ in range(3000)]
    assert {d.x for d in draws} == set(range(1, 9))
    assert {d.y for d in draws} == set(range(1, 9))
    assert 0.45 < np.mean([d.flip for d in draws]) < 0.55
    again = [draw_crop(np.random.default_rng(7)) for _ in range(1)]
    assert again[0] == draws[0]  # repeatable from the seed


def test_test_crop_is_the_centre_at_four_four():
    seq = _sequence(3)
    out = centre_crop(seq)
    for t in range(3):
        np.testing.assert_allclose(out[t], _reference_crop(seq[t], 4, 4, False), atol=1e-4)


def test_sixteen_view_tta():
    seq = _sequence(3)
    views = tta_views(seq)
    assert views.shape == (16, 3, 5, 56, 40)
    params = tta_params()
    assert params[0] == CropParams(1, 1, False) and params[1] == CropParams(1, 1, True)
    assert params[-1] == CropParams(8, 8, True) and len(set(params)) == 16
    for v, p in zip(views, params):
        np.testing.assert_allclose(v[2], _reference_crop(seq[2], p.x, p.y, p.flip), atol=1e-4)


def test_torch_tensors_give_the_same_crops():
    seq = _sequence(2)
    for p in (CropParams(2, 7, False), CropParams(8, 1, True)):
        for negate in (False, True):
            ref = apply_crop(seq, p, negate)
            got = apply_crop(torch.from_numpy(seq), p, negate)
            assert isinstance(got, torch.Tensor)
            np.testing.assert_allclose(got.numpy(), ref, atol=1e-5)
    assert tuple(tta_views(torch.from_numpy(seq)).shape) == (16, 2, 5, 56, 40)


def test_crop_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        apply_crop(np.zeros((1, 5, 64, 48), np.float32), CropParams(4, 9, False))


def test_crops_are_eight_pixels_smaller_than_the_stored_frame():
    # The paper's 64×48 → 56×40, and any other stored size likewise (a recipe may store 72×40).
    assert apply_crop(np.zeros((2, 5, 64, 48), np.float32), CropParams(4, 4, False)).shape == (2, 5, 56, 40)
    assert apply_crop(np.zeros((2, 5, 72, 40), np.float32), CropParams(1, 8, True)).shape == (2, 5, 64, 32)


# --------------------------------------------------------------------------- clip sampling


def test_training_clips():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(sample_train_clip(9, rng), np.arange(9))  # short: whole
    np.testing.assert_array_equal(sample_train_clip(16, rng), np.arange(16))
    starts = set()
    for _ in range(400):
        idx = sample_train_clip(20, rng)
        assert len(idx) == 16 and np.all(np.diff(idx) == 1) and idx[0] >= 0 and idx[-1] <= 19
        starts.add(int(idx[0]))
    assert starts == set(range(5))  # every valid start, and only those
    a = sample_train_clip(100, np.random.default_rng(5))
    b = sample_train_clip(100, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


def test_test_clips():
    np.testing.assert_array_equal(sample_test_clip(50), np.arange(50))
    np.testing.assert_array_equal(sample_test_clip(300), np.arange(128))
    np.testing.assert_array_equal(sample_test_clip(300, gallery_tail=True), np.arange(172, 300))
    np.testing.assert_array_equal(sample_test_clip(300, max_frames=16), np.arange(16))
    with pytest.raises(ValueError):
        sample_test_clip(0)


def test_mars_size_jpegs_are_worked_at_128x64_from_a_reduced_decode(tmp_path):
    """256×128 JPEG crops: decoded at half size by libjpeg and worked at 128×64 (default), the
    same as preprocessing those half-size decodes; max_work_height=0 works at native size."""
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur((rng.random((300, 160, 3)) * 255).astype(np.uint8), (0, 0), 3)
    paths = []
    for t in range(5):
        frame = np.ascontiguousarray(base[t * 4: t * 4 + 256, t * 2: t * 2 + 128])
        path = tmp_path / f"{t:04d}.jpg"
        cv2.imwrite(str(path), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    out = preprocess_tracklet(paths)
    halves = [cv2.imread(str(p), cv2.IMREAD_REDUCED_COLOR_2)[:, :, ::-1].copy() for p in paths]
    assert halves[0].shape == (128, 64, 3)
    assert np.array_equal(out, preprocess_tracklet(halves))
    native = preprocess_tracklet(paths, PreprocessConfig(max_work_height=0))
    assert native.shape == out.shape == (5, 5, 64, 48)
    assert not np.array_equal(native, out)
    assert np.abs(native[:, :3].astype(int) - out[:, :3].astype(int)).mean() < 3  # the same picture
    with pytest.raises(ValueError, match="max_work_height"):
        PreprocessConfig(max_work_height=32)
