import numpy as np
from scipy import ndimage

from digitrec import data
from digitrec.data.render.fields import Condition, make_field

SPACED = Condition("spaced", (5, 5), (0.1, 0.3))
TOUCHING = Condition("touching", (5, 5), (-0.12, -0.05))


def fields(cond, n=20, seed=0, **kw):
    x, y = data.load_mnist("test")
    rng = np.random.default_rng(seed)
    return [make_field(x[:300], y[:300], cond, rng, height=40, **kw) for _ in range(n)]


def components(f):
    return ndimage.label(f.image < 128, structure=np.ones((3, 3)))[1]


def test_same_seed_same_fields_and_text_matches_the_boxes():
    a, b = fields(SPACED), fields(SPACED)
    assert all(fa.text == fb.text and (fa.image == fb.image).all() for fa, fb in zip(a, b))
    assert all(len(f.text) == 5 == len(f.boxes) and f.text.isdigit() for f in a)
    assert any(fa.text != fb.text for fa, fb in zip(a, fields(SPACED, seed=1)))


def test_boxes_hold_each_digits_ink_left_to_right():
    for f in fields(SPACED):
        lefts = [x for x, _, _, _ in f.boxes]
        assert lefts == sorted(lefts)
        for x, y, w, h in f.boxes:
            assert (f.image[y:y + h, x:x + w] < 128).any()
        assert (f.image[:, :f.boxes[0][0]] > 250).all()  # paper left of the first digit


def test_negative_gaps_make_neighbours_touch():
    spaced = [components(f) for f in fields(SPACED)]
    touching = [components(f) for f in fields(TOUCHING)]
    assert np.mean(touching) < np.mean(spaced) - 1
    for f in fields(TOUCHING):
        assert all(b[0] < a[0] + a[2] for a, b in zip(f.boxes, f.boxes[1:]))  # ink boxes overlap


def test_marks_and_non_digits_are_not_in_the_text():
    others = np.zeros((1, 28, 28), np.uint8)
    others[0, 4:24, 4:24] = 255  # a filled square
    cond = Condition("marked", (4, 4), (0.2, 0.3), marks=1.0, others=1.0)
    for f in fields(cond, others=others):
        assert len(f.text) == 4 == len(f.boxes)
        # four digits, a hyphen or a point, and the square: more marks than digits
        assert components(f) >= 6


def test_patterns_write_their_separators_into_the_text():
    cond = Condition("amounts", (1, 1), (0.1, 0.3), patterns=("#,###.##", "##/##"))
    texts = [f.text for f in fields(cond)]
    assert all(len(t) == 8 and t[1] == "," and t[5] == "." or len(t) == 5 and t[2] == "/" for t in texts)
    assert {len(t) for t in texts} == {5, 8}
    assert all(len(f.boxes) == sum(c.isdigit() for c in f.text) for f in fields(cond))


def test_boxed_fields_have_a_space_per_empty_box_and_a_box_per_digit():
    cond = Condition("boxed", (4, 10), (0.0, 0.0), boxed=True, empty=0.3)
    fs = fields(cond)
    assert any(" " in f.text for f in fs) and all(f.text.strip() for f in fs)
    assert all(len(f.boxes) == sum(c.isdigit() for c in f.text) for f in fs)
    # the box lines: a long dark row above and below the digits
    assert all((f.image < 128).mean(1).max() > 0.5 for f in fs)


def test_restyled_digits_keep_their_height_and_change_their_shape():
    styled = Condition("styled", (5, 5), (0.1, 0.3), restyled=True)
    for seed in range(5):  # a field's first digits are drawn before any restyling, so they are the same
        (plain,), (other,) = fields(SPACED, n=1, seed=seed), fields(styled, n=1, seed=seed)
        assert plain.text == other.text
        assert [h for *_, h in plain.boxes] == [h for *_, h in other.boxes]
        assert plain.image.shape != other.image.shape or (plain.image != other.image).any()


def test_heavy_restyled_digits_are_broader_and_inkier():
    heavy = Condition("heavy", (5, 5), (0.1, 0.3), restyled=True, heavy=True)
    for seed in range(5):  # the same digits at the same heights, drawn before any restyling
        (plain,), (broad,) = fields(SPACED, n=1, seed=seed), fields(heavy, n=1, seed=seed)
        assert plain.text == broad.text
        assert [h for *_, h in plain.boxes] == [h for *_, h in broad.boxes]
        assert all(b[2] > p[2] for p, b in zip(plain.boxes, broad.boxes))
        assert (broad.image < 128).sum() > 1.3 * (plain.image < 128).sum()
