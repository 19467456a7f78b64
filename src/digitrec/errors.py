"""The one exception users see: every input problem is reported as an InputError."""


class InputError(ValueError):
    """Bad user input (file, image, argument); the message names it and says what is wrong."""


class ImageTooLarge(InputError):
    """An image over the pixel limit, found from its header before it is decoded."""
