"""A digit image of your own, prepared the way MNIST's digits were.

MNIST's images went through these steps (LeCun, Cortes and Burges, "The MNIST database"): the
digit, white on black, was scaled so that its longer side is 20 pixels, keeping its aspect ratio,
with grey levels from the anti-aliasing; then it was placed in a 28 x 28 frame so that its centre
of mass sits at the centre. `prepare_digit` does the same to any picture of one digit:

1. grey levels (a transparent background counts as paper);
2. light ink on a dark background: the background's level is the median of the border pixels,
   and a light background (dark ink on paper) is inverted;
3. the background level becomes 0 and the darkest-to-lightest range of the ink is stretched to
   0 .. 255; faint specks below INK_FRACTION of the ink's range (paper texture, JPEG noise)
   become 0;
4. cropped to the bounding box of the ink;
5. the longer side scaled to 20 pixels, keeping the aspect ratio (Lanczos, anti-aliased);
6. placed in 28 x 28 so that its centre of mass, rounded to whole pixels, is at pixel (14, 14),
   where it is in MNIST (the test set's mean is (13.99, 14.01), spread ±0.29: whole-pixel shifts).

`read_digit` reads a PNG or JPEG file (any image Pillow reads) and prepares it. Both need Pillow,
imported only when called: ``pip install "fastnn-loops[plot]"``.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import FastnnError

if TYPE_CHECKING:
    from PIL.Image import Image

SIZE = 28  # the frame
DIGIT_SIZE = 20  # the longer side of the digit in it
CENTRE = 14.0  # where MNIST's centres of mass are, in pixel indices (row and column)
INK_FRACTION = 0.2  # below this part of the ink's range, a pixel is background
MIN_CONTRAST = 0.1  # ink must differ from the background by 10 % of black-to-white
MAX_PIXELS = 40_000_000  # larger images are refused before they are decoded

INSTALL_HINT = 'reading images needs Pillow: pip install "fastnn-loops[plot]"'


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise FastnnError(INSTALL_HINT) from None
    return Image


def read_digit(path: str | os.PathLike) -> np.ndarray:
    """Read one picture of a digit (PNG, JPEG or any format Pillow reads) and prepare it as
    MNIST was prepared (see `prepare_digit`): uint8 (28, 28), light digit on black.

    Raises FastnnError, with the file's name and the problem in one line, for a missing,
    unreadable or empty file, a file that is not an image, an image of more than 40 megapixels,
    a damaged image, and an image with no digit on it (one colour).
    """
    Image = _pillow()
    from PIL import UnidentifiedImageError

    if not os.path.exists(path):
        raise FastnnError(f"{path}: no such file")
    if os.path.isdir(path):
        raise FastnnError(f"{path}: is a folder, not an image")
    try:
        if os.path.getsize(path) == 0:
            raise FastnnError(f"{path}: the file is empty, not an image")
        with warnings.catch_warnings():
            # Pillow warns above its own limit (89 megapixels): the check below says more.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size  # from the header: nothing is decoded yet
                if width * height > MAX_PIXELS:
                    size = f"is {width} x {height} = {width * height:,} pixels"
                    raise FastnnError(_too_large(path, size))
                image.load()
                return prepare_digit(image, name=str(path))
    except FastnnError:
        raise
    except Image.DecompressionBombError:
        # Pillow refuses, before telling us the size, beyond twice its own limit.
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise FastnnError(_too_large(path, f"has over {limit:,.0f} pixels")) from None
    except UnidentifiedImageError:
        raise FastnnError(
            f"{path}: not an image (Pillow cannot read it as PNG, JPEG ...)"
        ) from None
    except PermissionError:
        raise FastnnError(f"{path}: cannot read: permission denied") from None
    except (OSError, SyntaxError, ValueError) as error:
        # A truncated or corrupt image fails while decoding, in several ways.
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise FastnnError(f"{path}: cannot read the image: {reason}") from None


def _too_large(path: str | os.PathLike, size: str) -> str:
    return (
        f"{path}: the image {size}; at most {MAX_PIXELS:,} are read: "
        "scale it down or crop it to the digit"
    )


def prepare_digit(image: Image | np.ndarray, name: str = "the image") -> np.ndarray:
    """One picture of a digit, as MNIST prepared its digits: uint8 (28, 28), a light digit on
    black, its longer side 20 pixels, its centre of mass at pixel (14, 14).

    `image` is a Pillow image (any mode; transparent pixels count as background) or an array:
    (H, W) grey levels, or (H, W, 3) RGB, or (H, W, 4) RGBA; uint8, or floats in 0 .. 1.
    Dark ink on a light background is inverted; light ink on dark is kept. `name` is used in
    the FastnnError raised for an image with no digit on it.
    """
    grey = _grey_levels(image)  # float64 (H, W), 0 black .. 255 white
    if grey.size == 0:
        raise FastnnError(f"{name}: the image has no pixels")
    border = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    background = float(np.median(border))
    light_background = background > 127.5
    ink = background - grey if light_background else grey - background
    ink = np.clip(ink, 0, None)
    contrast = float(ink.max())
    if contrast < MIN_CONTRAST * 255:
        colour = "light" if light_background else "dark"
        raise FastnnError(f"{name}: blank: no digit found (the whole image is {colour})")
    ink = ink * (255 / contrast)
    ink[ink < INK_FRACTION * 255] = 0

    rows, columns = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    ink = ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    digit = _scale_longer_side(ink, DIGIT_SIZE)
    return _place_by_centre_of_mass(digit)


def _grey_levels(image: Image | np.ndarray) -> np.ndarray:
    """Grey levels 0 .. 255 as float64 (H, W); a transparent pixel becomes the paper."""
    _pillow()
    from PIL import ImageOps

    if isinstance(image, np.ndarray):
        image = _image_from_array(image)

    image = ImageOps.exif_transpose(image)  # a phone's photo, turned as it was taken
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or (image.mode == "I" and values.max() > 255):
            values = values / 257  # 16-bit grey: 0 .. 65535
        elif image.mode == "F" and values.max() <= 1:
            values = values * 255
        return np.clip(values, 0, 255)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float64)
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64) / 255
    grey = np.asarray(rgba.convert("RGB").convert("L"), dtype=np.float64)
    # The strokes are the opaque pixels: lay them on paper of the opposite shade.
    opaque = alpha > 0.5
    ink_level = float(np.mean(grey[opaque])) if opaque.any() else 0.0
    paper = 255.0 if ink_level < 127.5 else 0.0
    return alpha * grey + (1 - alpha) * paper


def _image_from_array(array: np.ndarray) -> Image:
    Image = _pillow()
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise FastnnError(
            f"an image array must be (H, W), (H, W, 3) or (H, W, 4), not {array.shape}"
        )
    if array.dtype != np.uint8:
        values = np.asarray(array, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise FastnnError("an image array must not hold NaN or infinity")
        array = np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))


def _scale_longer_side(ink: np.ndarray, longer: int) -> np.ndarray:
    """Scale to `longer` pixels on the longer side, keeping the aspect ratio (at least 1 pixel
    on the shorter), with Lanczos filtering; float64, clipped to 0 .. 255 (the filter rings
    slightly below 0 beside sharp edges)."""
    Image = _pillow()
    height, width = ink.shape
    scale = longer / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    scaled = np.clip(np.asarray(resized, dtype=np.float64), 0, 255)
    # Thin strokes come out grey when shrunk a lot; MNIST's darkest ink is 255, as here.
    return scaled * (255 / scaled.max()) if scaled.max() > 0 else scaled


def _place_by_centre_of_mass(digit: np.ndarray) -> np.ndarray:
    """Put `digit` (at most 20 x 20) in a 28 x 28 frame so its centre of mass, rounded to a
    whole pixel, lands on (CENTRE, CENTRE); where that would push ink out of the frame (a digit
    whose mass is far off its box's middle), the box moves only as far as the frame allows."""
    height, width = digit.shape
    centre_row, centre_column = centre_of_mass(digit)
    top = int(np.clip(round(CENTRE - centre_row), 0, SIZE - height))
    left = int(np.clip(round(CENTRE - centre_column), 0, SIZE - width))
    frame = np.zeros((SIZE, SIZE), dtype=np.uint8)
    frame[top : top + height, left : left + width] = np.round(digit).astype(np.uint8)
    return frame


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of an image's centre of mass, its pixels' grey levels as masses, in pixel
    indices: (14, 14) for a digit prepared here or in MNIST."""
    values = np.asarray(image, dtype=np.float64)
    total = values.sum()
    rows = values.sum(axis=1) @ np.arange(values.shape[0]) / total
    columns = values.sum(axis=0) @ np.arange(values.shape[1]) / total
    return float(rows), float(columns)


def save_digit(path: str | os.PathLike, digit: np.ndarray) -> None:
    """Write a prepared digit, uint8 (28, 28), as a greyscale PNG, atomically."""
    Image = _pillow()
    from .model import atomic_write

    try:
        atomic_write(path, lambda file: Image.fromarray(digit).save(file, format="PNG"))
    except OSError as error:
        raise FastnnError(f"{path}: cannot write: {error.strerror or error}") from None
