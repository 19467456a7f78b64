import numpy as np
import pytest
from conftest import draw_digit
from ink_stage import ink_stage
from PIL import Image
from scipy import ndimage

from digitrec import InputError
from digitrec.imaging import load_image


def _centre_of_mass(a):
    return np.array(ndimage.center_of_mass(a))


def test_output_is_28x28_float_in_unit_range(drawn_png):
    out = ink_stage(drawn_png(7))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() == pytest.approx(1.0)


def test_inverts_dark_ink_on_light_paper():
    out = ink_stage(draw_digit(1))
    assert out[0, 0] == 0 and out.max() == pytest.approx(1.0)


def test_both_polarities_give_the_same_image():
    dark = ink_stage(draw_digit(7))
    light = ink_stage(draw_digit(7, ink=255, paper=0))
    assert np.abs(dark - light).max() < 1e-5


def test_transparent_canvas_uses_alpha_as_ink(drawn_png):
    rgba = ink_stage(drawn_png(7, "rgba"))
    dark = ink_stage(drawn_png(7, "dark"))
    assert np.abs(rgba - dark).max() < 1e-5


def test_fits_the_digit_into_20_pixels_centred_by_mass():
    img = Image.new("L", (500, 300), 255)
    img.paste(draw_digit(0, size=120), (360, 20))  # small and off-centre
    out = ink_stage(img)
    rows, cols = np.nonzero(out > 0.1)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 in (19, 20, 21)
    assert np.allclose(_centre_of_mass(out), 14, atol=0.5)


def test_mnist_digits_keep_their_shape(mnist_test_small):
    x = mnist_test_small[0][:50]
    out = np.stack([ink_stage(a) for a in x])
    corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(out, x / 255.0)]
    assert np.median(corr) > 0.9


def test_blank_and_near_blank_images_have_no_digit():
    assert ink_stage(np.zeros((28, 28), np.uint8)) is None
    assert ink_stage(np.full((200, 200, 3), 255, np.uint8)) is None
    speck = np.full((100, 100), 250, np.uint8)
    speck[50, 50] = 0
    assert ink_stage(speck) is None


@pytest.mark.parametrize("dtype,scale", [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0), (np.float64, 255.0)])
def test_accepts_any_numeric_dtype(dtype, scale):
    base = np.asarray(draw_digit(1), np.float64) / 255
    out = ink_stage((base * scale).astype(dtype))
    assert out is not None and np.abs(out - ink_stage(draw_digit(1))).max() < 0.02


def test_accepts_rgb_and_single_channel_arrays():
    grey = np.asarray(draw_digit(7))
    rgb = np.stack([grey] * 3, axis=-1)
    assert np.abs(ink_stage(rgb) - ink_stage(grey[:, :, None])).max() < 1e-5


def test_reads_a_16_bit_png(tmp_path):
    arr = (np.asarray(draw_digit(1), np.uint16) * 257)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    assert np.abs(ink_stage(tmp_path / "deep.png") - ink_stage(draw_digit(1))).max() < 0.02  # its 8-bit self


@pytest.mark.parametrize("bad", [np.zeros((3, 4, 5)), np.zeros((10,)), np.zeros((0, 5))])
def test_bad_array_shapes_are_input_errors(bad):
    with pytest.raises(InputError, match="shape"):
        load_image(bad)


def test_nan_pixels_are_input_errors():
    a = np.zeros((28, 28), np.float32)
    a[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        load_image(a)


def test_non_image_file_is_an_input_error_naming_it(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(InputError, match="notes.txt"):
        load_image(path)


def test_truncated_png_is_an_input_error(tmp_path, drawn_png):
    path = drawn_png(7)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="7-dark.png"):
        load_image(path)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_unsupported_type_is_an_input_error():
    with pytest.raises(InputError, match="list"):
        load_image([[0, 1], [1, 0]])


def test_batch_path_gives_what_single_images_give(mnist_test_small):
    from digitrec.evaluation.corruptions import corrupt
    from digitrec.imaging import preprocess_batch

    x = mnist_test_small[0][:40]
    # photo-like arrays too: the batch must get the same ink clean-up as single images
    batch = np.concatenate([x, 255 - x[:10], corrupt(x[:10], "brightness", 0), corrupt(x[:10], "impulse_noise", 0),
                            np.zeros((1, 28, 28), np.uint8)])
    x28, found = preprocess_batch(batch)
    single = [ink_stage(a) for a in batch]
    assert found.tolist() == [s is not None for s in single] and found[:40].all() and not found[-1]
    assert max(np.abs(a - (s if s is not None else 0)).max() for a, s in zip(x28, single)) < 1e-5


def test_batch_of_mixed_sizes_and_sources_matches_single_images(drawn_png):
    from digitrec.imaging import preprocess_batch

    images = [drawn_png(7), draw_digit(1, size=140), np.asarray(draw_digit(0)), np.full((50, 60), 255, np.uint8),
              drawn_png(1, "rgba")]
    x28, found = preprocess_batch(images)
    assert found.tolist() == [True, True, True, False, True]
    for img, a in zip(images, x28):
        single = ink_stage(img)
        assert np.abs(a - (single if single is not None else 0)).max() < 1e-5


def test_mnist_digits_pass_through_the_batch_path_essentially_unchanged(mnist_test_small):
    from digitrec.imaging import preprocess_batch

    x = mnist_test_small[0]
    x28, _ = preprocess_batch(x)
    # what changes: faint fringe pixels outside the box of strong ink; 1.6 % of digits move by a pixel
    assert (np.abs(x28 - x / 255.0).mean(axis=(1, 2)) < 0.005).mean() >= 0.95


def test_big_canvases_are_antialiased_not_aliased():
    from digitrec.imaging import to_mnist_batch

    ink = np.zeros((560, 560), np.float32)
    ink[40:520:5, 40:520] = 1  # a line every 5th row: point-sampling every 24th row would see coarse stripes
    x28, _ = to_mnist_batch(ink[None])
    assert x28[0][8:20, 8:20].std() < 0.02


def test_big_digital_canvases_are_cleaned_small_and_read_as_at_full_size(mnist_test_small):
    # a canvas's ink stage runs on a box-averaged copy (its cost grows with the pixels); what the model
    # sees must stay what the full-size ink map gives, up to sub-pixel centring and a thin stroke's width
    from digitrec.imaging import ink_map, to_mnist

    for a in mnist_test_small[0][:20]:
        canvas = np.asarray(Image.fromarray(255 - a).resize((280, 280), Image.Resampling.BILINEAR))
        assert max(load_image(canvas, one_digit=True).shape) < 140
        fast, full = ink_stage(canvas), to_mnist(ink_map(canvas / 255.0))
        assert np.abs(fast.sum() - full.sum()) < 0.25 * full.sum()
        shifts = [np.abs(np.roll(fast, (dy, dx), (0, 1)) - full).mean() for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        assert min(shifts) < 0.04


def test_small_digit_on_a_big_picture_and_photos_keep_their_resolution():
    small = np.full((900, 900), 255, np.uint8)
    small[400:500, 400:500] = np.asarray(draw_digit(7, size=100))
    assert load_image(small, one_digit=True).shape == (900, 900)
    photo = np.asarray(draw_digit(7), np.float32) + np.random.default_rng(0).normal(0, 3, (280, 280))
    assert load_image(np.clip(photo, 0, 255).astype(np.uint8), one_digit=True).shape == (280, 280)


def test_batched_ink_stage_matches_one_picture_at_a_time(mnist_test_small):
    # the corruptions send pictures down the per-picture branches (salt-and-pepper, lines, outlines, bands)
    from digitrec.evaluation import corruptions
    from digitrec.imaging import ink_map, ink_maps

    x = mnist_test_small[0][:8]
    pictures = np.concatenate([x] + [corruptions.corrupt(x, c, 0) for c in
                                     ("impulse_noise", "stripe", "canny_edges", "fog", "inverted", "zigzag")])
    grey = pictures.astype(np.float32) / 255
    batched = ink_maps(grey)
    assert all(np.array_equal(b, ink_map(g)) for b, g in zip(batched, grey))
    assert not np.array_equal(batched[8:16], grey[8:16])  # the clean-up did something
