"""The fused network input (data.network_batch) equals the numpy reference, and the stored-frame
inference path built on it gives the features of the float path."""
from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch

from reidviewer.data.network_batch import network_batch
from reidviewer.data.preprocess import PreprocessConfig, preprocess_tracklet, to_network_input
from reidviewer.data.transforms import CropParams, apply_crop, tta_params
from reidviewer.model import ModelConfig, build_model, extract_features
from reidviewer.model.inference import compile_seconds, embed_stored_frames

CONFIGS = {
    "default": PreprocessConfig(),
    "rcn-quirk": PreprocessConfig(rcn_quirk_norm=True),
    "no-flow": PreprocessConfig(use_flow=False),
}


def reference(stored: np.ndarray, config: PreprocessConfig, crop: CropParams) -> np.ndarray:
    out = apply_crop(to_network_input(stored, config), crop)
    if not config.use_flow:
        out[:, 3:] = 0.0  # the network sees zeros there, as training feeds it
    return out


def stored_frames(n: int = 40, seed: int = 0) -> np.ndarray:
    """Random stored frames, plus the hard cases: a near-flat frame and an all-zero flow frame."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 256, (n, 5, 64, 48), dtype=np.uint8)
    s[0, :3] = 200
    s[0, 0, 10, 10] = 201  # almost constant colour: a tiny std, amplified by the division
    s[1, 3:] = 0  # no motion: a constant flow channel must give zeros, not NaN
    return s


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("crop", [CropParams(4, 4, False), *tta_params()[:4], CropParams(8, 1, True)],
                         ids=lambda c: f"x{c.x}y{c.y}{'f' if c.flip else ''}")
def test_fused_input_equals_the_numpy_pipeline(name, crop):
    config = CONFIGS[name]
    s = stored_frames()
    ref = reference(s, config, crop)
    got = network_batch([s[:7], s[7:8], s[8:]], config, crop)
    assert got.shape == ref.shape and got.is_contiguous(memory_format=torch.channels_last)
    assert np.isfinite(got.numpy()).all()
    # Frame 0 divides by a std of ~4e-5: rounding there is amplified for both pipelines alike.
    np.testing.assert_allclose(got.numpy()[1:], ref[1:], atol=5e-5)
    np.testing.assert_allclose(got.numpy()[0], ref[0], atol=5e-2)


def test_fused_input_on_frames_preprocessed_from_images(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    paths = []
    base = rng.integers(0, 256, (128, 64, 3), dtype=np.uint8)
    for i in range(5):  # a walker-ish shift per frame gives the flow something to see
        p = tmp_path / f"f{i:03d}.png"
        Image.fromarray(np.roll(base, 2 * i, axis=1)).save(p)
        paths.append(str(p))
    stored = preprocess_tracklet(paths, PreprocessConfig())
    ref = reference(stored, PreprocessConfig(), CropParams(4, 4, False))
    np.testing.assert_allclose(network_batch(stored).numpy(), ref, atol=5e-5)


def test_out_buffer_is_filled_and_returned():
    s = stored_frames(9)
    buf = torch.full((9, 5, 56, 40), 7.0).contiguous(memory_format=torch.channels_last)
    got = network_batch(s, out=buf)
    assert got is buf
    np.testing.assert_allclose(buf.numpy()[1:], reference(s, PreprocessConfig(), CropParams(4, 4, False))[1:], atol=5e-5)
    with pytest.raises(ValueError, match="out has shape"):
        network_batch(s, out=buf[:3])


def test_bad_input_is_refused_with_what_is_wrong():
    with pytest.raises(ValueError, match="uint8"):
        network_batch(np.zeros((2, 5, 64, 48), np.float32))
    with pytest.raises(ValueError, match=r"\(T, 5, H, W\)"):
        network_batch(np.zeros((2, 3, 64, 48), np.uint8))
    with pytest.raises(ValueError, match="does not fit"):
        network_batch(np.zeros((2, 5, 64, 48), np.uint8), crop=CropParams(9, 0, False))
    with pytest.raises(ValueError, match="no clips"):
        network_batch([])


def model_for(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelConfig(head="ran", num_classes=7)).eval()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_stored_frames_give_the_features_of_the_float_path(name):
    config = CONFIGS[name]
    m = model_for()
    clips = [stored_frames(n, seed=n)[2:] for n in (5, 3, 11, 4)]  # the hard frames left out
    crop = CropParams(2, 6, True)
    floats = [torch.from_numpy(reference(c, config, crop)) for c in clips]
    want = extract_features(m, floats, chunk_size=4, group_frames=9)
    got = extract_features(m, clips, chunk_size=4, group_frames=9, stored=True, preprocess=config, crop=crop)
    assert torch.allclose(got.features, want.features, atol=1e-4)
    for a, b in zip(got.attention, want.attention):
        assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.slow
def test_compiled_stored_path_equals_eager_or_falls_back():
    # torch.compile needs a C compiler; without one the path warns and runs eager.
    m = model_for(1)
    s = stored_frames(11)[2:]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = embed_stored_frames(m, [s[:3], s[3:]], chunk_size=4, compile=True)  # two compiled chunks, one eager
    fell_back = [str(w.message) for w in caught if "fast path" in str(w.message)]
    if shutil.which("cc") or shutil.which("gcc"):
        assert not fell_back  # a C compiler is here: the compiled graph must really run
        assert compile_seconds(m) is not None
    assert torch.allclose(fast, embed_stored_frames(m, [s], chunk_size=4), atol=1e-4)


def test_read_ahead_keeps_order_raises_at_the_failing_item_and_stops_cleanly():
    from reidviewer.engine.evaluate import read_ahead

    seen = []

    def read(i):
        seen.append(i)
        if i == 5:
            raise OSError("disk gone")
        return i * i

    assert list(read_ahead(list(range(5)), read)) == [(i, i * i) for i in range(5)]
    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item, value in read_ahead(list(range(9)), read, depth=2):
            got.append(value)
    assert got == [0, 1, 4, 9, 16]  # everything before the failing item arrived, in order
    seen.clear()
    it = read_ahead(list(range(100)), read, depth=2)
    next(it)
    it.close()  # a cancelled evaluation: at most a few items were read ahead, none after
    assert len(seen) <= 4
