import numpy as np
from scipy import ndimage

from digitrec import data
from digitrec.data.synthetic import Condition, make_field

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
