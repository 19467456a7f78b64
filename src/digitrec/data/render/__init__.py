"""Every generated set, in one family: ``contexts`` (MNIST digits as users hand them in), ``non_digits``
(pictures with no digit, as tensors for training and as users hand them in), ``paper`` (digits
photographed on paper, as a batch), ``fields`` (number fields on a line), ``form_pages`` (scanned form
pages with their template), drawn with ``draw``'s helpers and seeded by ``seeds``' one convention."""
