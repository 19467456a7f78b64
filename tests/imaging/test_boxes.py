import numpy as np
from PIL import Image, ImageDraw

from digitrec.imaging.boxes import box_row


def row(n, side=60, apart=0, line=3, strokes=()):
    """Ink (bright on 0) of ``n`` boxes ``side`` px across, ``apart`` px between them; ``strokes``: (x, y0, y1)
    upright strokes drawn inside."""
    img = Image.new("L", (n * (side + apart) + 40, side + 40))
    d = ImageDraw.Draw(img)
    for i in range(n):
        x0 = 20 + i * (side + apart)
        d.rectangle([x0, 20, x0 + side, 20 + side], outline=255, width=line)
    for x, y0, y1 in strokes:
        d.line([(x, y0), (x, y1)], fill=255, width=8)
    return np.asarray(img, np.float32) / 255


def test_finds_the_inside_of_each_box_left_to_right():
    cells = box_row(row(4))
    assert len(cells) == 4
    assert all(a[3] < b[2] for a, b in zip(cells, cells[1:]))
    t, b, lf, rt = cells[1]
    assert 23 <= t < 28 and 72 < b <= 77 and 83 <= lf < 88 and 132 < rt <= 137


def test_boxes_set_apart_give_no_box_between_them():
    assert len(box_row(row(5, apart=15))) == 5


def test_a_tall_upright_stroke_does_not_split_a_box():
    assert len(box_row(row(3, strokes=[(110, 24, 76)]))) == 3


def test_ink_without_boxes_has_none():
    ink = np.zeros((100, 300), np.float32)
    ink[30:70, 40:48] = 1
    ink[30:38, 80:140] = 1
    assert box_row(ink) == []


def test_an_upright_stroke_against_a_side_stays_inside_the_box():
    ink = row(3, strokes=[(87, 27, 73)])  # box 1's left side is columns 80-82; the stroke 83-91 touches it
    (_, _, left, right), = [c for c in box_row(ink) if c[2] < 100 < c[3]]
    assert left <= 85 and ink[30:70, left:right].max() == 1
