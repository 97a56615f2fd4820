"""Dense Lucas–Kanade flow (SPEC §b.2): direction, magnitude, zeros, first frame, encoding."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import reidviewer.data.flow as flow_mod
from reidviewer.data.flow import (
    LK_THRESHOLD_RCN,
    FlowNotice,
    compute_flow,
    decode_flow,
    dense_lk,
    encode_flow,
)
from pipeline_fixtures import moving_gray

MARGIN = 8  # borders see replicated pixels; judge the interior


def _interior(f: np.ndarray) -> np.ndarray:
    return f[..., MARGIN:-MARGIN, MARGIN:-MARGIN]


@pytest.mark.parametrize(
    "dx, dy",
    [(0.5, 0.0), (1.0, 0.0), (2.0, 0.0), (-1.0, 0.0), (0.0, 0.5), (0.0, 1.0), (0.0, 2.0), (0.0, -2.0)],
)
def test_lk_recovers_known_translation(dx, dy):
    # Rounded to integers like real 8-bit frames; content moves by (+dx, +dy) per frame.
    gray = np.rint(moving_gray(3, dx, dy))
    flow = dense_lk(gray)
    u = np.median(_interior(flow[1:, 0]))
    v = np.median(_interior(flow[1:, 1]))
    # Single-scale LK linearises: accurate for sub-pixel motion, ~5-10 % over at 2 px.
    tol = 0.1 + 0.1 * max(abs(dx), abs(dy))
    assert abs(u - dx) <= tol, (u, dx)
    assert abs(v - dy) <= tol, (v, dy)
    # Right direction at (nearly) every interior pixel, not just in the median.
    along = _interior(flow[1:, 0]) * np.sign(dx) + _interior(flow[1:, 1]) * np.sign(dy)
    assert np.mean(along > 0) > 0.95


def test_static_frames_give_exactly_zero_flow():
    gray = np.repeat(np.rint(moving_gray(1, 0, 0)), 4, axis=0)
    flow = dense_lk(gray, threshold=LK_THRESHOLD_RCN)
    assert flow.shape == (4, 2, 128, 64)
    assert np.all(flow == 0)


def test_first_frame_rules():
    gray = np.rint(moving_gray(4, 1.0, 0.0))
    zero = dense_lk(gray, first_frame="zero")
    assert np.all(zero[0] == 0) and np.abs(zero[1]).max() > 0.5
    copy = dense_lk(gray, first_frame="copy_next")
    np.testing.assert_array_equal(copy[0], copy[1])
    np.testing.assert_array_equal(copy[1:], zero[1:])
    with pytest.raises(ValueError, match="first_frame"):
        dense_lk(gray, first_frame="last")


def test_one_frame_tracklet_has_zero_flow_and_a_notice():
    gray = np.rint(moving_gray(1, 0, 0))
    with pytest.warns(FlowNotice, match="one-frame"):
        flow = dense_lk(gray)
    assert flow.shape == (1, 2, 128, 64) and np.all(flow == 0) and np.isfinite(flow).all()
    for method in ("farneback", "dis"):
        with pytest.warns(FlowNotice):
            assert np.all(compute_flow(gray, method) == 0)


def test_edge_gets_normal_flow_along_the_gradient():
    # Vertical stripes (intensity varies along x only) moving diagonally: the aperture problem.
    # λ2 = 0, so only the component along the gradient (x) is recoverable; v must be ~0.
    gray = np.rint(moving_gray(3, 1.0, 1.0))
    stripes = np.repeat(gray[:, 64:65, :], 128, axis=1)  # one row repeated: no y variation
    flow = dense_lk(stripes)
    u = _interior(flow[1:, 0])
    assert abs(np.median(u) - 1.0) < 0.2
    assert np.abs(flow[:, 1]).max() < 1e-3  # rounding noise only


def test_default_threshold_keeps_noise_out_of_flat_areas():
    # A static flat grey background with sensor noise (σ = 1.5 grey levels).
    rng = np.random.default_rng(3)
    gray = np.rint(120 + rng.normal(0, 1.5, (4, 128, 64))).astype(np.float32)
    default = encode_flow(dense_lk(gray))
    rcn = encode_flow(dense_lk(gray, threshold=LK_THRESHOLD_RCN))
    # Whole-pixel encoded flow (what the network sees): the default leaves the noise at zero,
    # RCN's literal threshold turns it into spurious motion.
    assert np.mean(default[1:] == 127) > 0.98
    assert np.mean(rcn[1:] == 127) < 0.8


def test_chunking_does_not_change_the_result(monkeypatch):
    gray = np.rint(moving_gray(11, 0.7, -0.4))
    whole = dense_lk(gray)
    monkeypatch.setattr(flow_mod, "_CHUNK_PIXELS", 3 * 128 * 64)  # chunks of 3 frame pairs
    np.testing.assert_array_equal(dense_lk(gray), whole)


def test_gradient_on_current_frame_also_tracks():
    gray = np.rint(moving_gray(3, 1.0, 0.0))
    flow = dense_lk(gray, gradient_frame="current")
    assert abs(np.median(_interior(flow[1:, 0])) - 1.0) < 0.25


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_opencv_alternatives_agree_on_direction(method):
    gray = np.rint(moving_gray(3, 1.0, 0.0))
    flow = compute_flow(gray, method)
    assert np.all(flow[0] == 0)
    assert abs(np.median(_interior(flow[1:, 0])) - 1.0) < 0.3
    assert abs(np.median(_interior(flow[1:, 1]))) < 0.3


def test_none_method_and_bad_arguments():
    gray = np.rint(moving_gray(2, 1.0, 0.0))
    assert np.all(compute_flow(gray, "none") == 0)
    with pytest.raises(ValueError, match="flow method"):
        compute_flow(gray, "horn")
    with pytest.raises(ValueError, match="positive"):
        dense_lk(gray, threshold=0)


def test_encoding_round_trip_and_clipping():
    u = np.array([[0.0, 1.0, -3.0, 0.4, 200.0, -200.0]], dtype=np.float32)
    v = np.array([[2.0, -1.0, 0.0, -0.6, 127.9, -127.0]], dtype=np.float32)
    flow = np.stack([u, v])[None]  # (1, 2, 1, 6)
    enc = encode_flow(flow)
    assert enc.dtype == np.uint8 and enc.shape == (1, 1, 6, 2)
    # R (channel 0) holds v + 127, G (channel 1) holds u + 127, as RCN's PNGs.
    np.testing.assert_array_equal(enc[0, 0, :, 0], [129, 126, 127, 126, 255, 0])
    np.testing.assert_array_equal(enc[0, 0, :, 1], [127, 128, 124, 127, 255, 0])
    back = decode_flow(enc)
    np.testing.assert_array_equal(back[0, 0, 0, :4], [0, 1, -3, 0])  # whole pixels survive
    np.testing.assert_array_equal(back[0, 1, 0, :4], [2, -1, 0, -1])
    assert back[0, 0, 0, 4] == 128 and back[0, 0, 0, 5] == -127  # clipped to [0, 255] − 127


def test_no_warning_for_normal_tracklets():
    gray = np.rint(moving_gray(3, 1.0, 0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dense_lk(gray)
