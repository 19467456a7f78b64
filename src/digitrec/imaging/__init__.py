"""Any picture -> what a model reads: ``decode`` (the boundary), ``ink`` and ``marks`` (photos and scans to
clean ink), ``frame`` (MNIST's 28x28 geometry; strips for the line model), ``locate`` (where a digit may be in
a large picture), ``preprocess`` (the readings of a picture that the recognizer weighs)."""
from .decode import MAX_PIXELS
from .frame import field_strip, to_mnist, to_mnist_batch
from .ink import ink_map, ink_maps
from .locate import digit_boxes
from .preprocess import (
           COMPATIBLE_VERSIONS,
           HEAVY,
           PREPROCESS_VERSION,
           heavy_x28,
           light_x28,
           load_image,
           load_line,
           preprocess_batch,
           read_pictures,
)

__all__ = ["load_image", "load_line", "preprocess_batch", "read_pictures", "light_x28", "heavy_x28",
           "ink_map", "ink_maps", "digit_boxes", "to_mnist", "to_mnist_batch", "field_strip", "MAX_PIXELS",
           "PREPROCESS_VERSION", "COMPATIBLE_VERSIONS", "HEAVY"]
