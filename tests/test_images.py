"""fastnn.images: a digit image file prepared as MNIST's digits were.

Every test works on real image files written here with Pillow: digits drawn with ImageDraw
strokes, and real MNIST test digits rendered again at other sizes, places and colours, as PNG
and JPEG. What is checked is what MNIST's description says of its images: a light digit on
black, the longer side of the ink 20 pixels with the aspect ratio kept, the centre of mass at
the centre of the 28 x 28 frame; and that a bad file is refused with one line naming it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fastnn.errors import FastnnError
from fastnn.images import centre_of_mass, prepare_digit, read_digit

# Where MNIST's digits have their centre of mass, in pixel indices (row, column): measured in
# test_mnist_centres_its_digits_at_14_14 below, not taken from fastnn.images.
CENTRE = 14.0

# Strokes of a few digits in a unit box (x right, y down), as a pen would draw them.
STROKES = {
    1: [[(0.25, 0.2), (0.55, 0.0), (0.55, 1.0)]],
    4: [[(0.7, 1.0), (0.7, 0.0), (0.05, 0.68), (0.95, 0.68)]],
    7: [[(0.05, 0.05), (0.95, 0.05), (0.4, 1.0)]],
    2: [[(0.1, 0.25), (0.3, 0.02), (0.7, 0.02), (0.88, 0.25), (0.1, 0.98), (0.95, 0.98)]],
}
ELLIPSE = 0  # drawn as an ellipse


def draw_digit(
    digit: int,
    canvas: tuple[int, int] = (300, 200),
    box: tuple[int, int, int, int] = (40, 30, 90, 140),
    stroke: int = 12,
    dark_on_light: bool = True,
    mode: str = "L",
) -> Image.Image:
    """One digit drawn in `box` (left, top, width, height) of a `canvas` (width, height)."""
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    if mode == "RGB":
        ink, paper = (ink, ink, ink), (paper, paper, paper)
    image = Image.new(mode, canvas, paper)
    pen = ImageDraw.Draw(image)
    left, top, width, height = box
    if digit == ELLIPSE:
        pen.ellipse([left, top, left + width - 1, top + height - 1], outline=ink, width=stroke)
        return image
    for line in STROKES[digit]:
        # The stroke's centre line is inset by half a stroke so the ink stays inside the box.
        inset = stroke / 2
        points = [
            (left + inset + x * (width - 2 * inset), top + inset + y * (height - 2 * inset))
            for x, y in line
        ]
        pen.line(points, fill=ink, width=stroke, joint="curve")
        for x, y in (points[0], points[-1]):  # round pen ends
            pen.ellipse([x - inset, y - inset, x + inset, y + inset], fill=ink)
    return image


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def ink_box(image: np.ndarray) -> tuple[int, int]:
    """(height, width) of the bounding box of the non-zero pixels."""
    rows, columns = np.nonzero(image.any(axis=1))[0], np.nonzero(image.any(axis=0))[0]
    return int(rows[-1] - rows[0] + 1), int(columns[-1] - columns[0] + 1)


def best_shifted_correlation(a: np.ndarray, b: np.ndarray, reach: int = 1) -> float:
    """The highest correlation of a with b moved by up to `reach` pixels either way: a whole-
    pixel shift is all a centre of mass rounded differently can cause."""
    best = -1.0
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            moved = np.roll(b.astype(float), (dy, dx), axis=(0, 1))
            best = max(best, float(np.corrcoef(a.astype(float).ravel(), moved.ravel())[0, 1]))
    return best


def assert_prepared_as_mnist(prepared: np.ndarray, aspect: float | None = None) -> None:
    """28 x 28 uint8, black corners, ink at full strength, the longer side of the ink 20
    pixels, the centre of mass within half a pixel (plus rounding) of MNIST's (14, 14)."""
    assert prepared.shape == (28, 28)
    assert prepared.dtype == np.uint8
    assert prepared.max() == 255
    # The background is black (a digit may touch the frame, as 1 % of MNIST's do).
    assert prepared[[0, 0, -1, -1], [0, -1, 0, -1]].max() == 0, "corners not black"
    height, width = ink_box(prepared)
    assert max(height, width) == 20, (height, width)
    if aspect is not None:  # width / height of the drawn digit, kept within a pixel's rounding
        if height >= width:
            assert abs(width - 20 * aspect) <= 1.5, (width, 20 * aspect)
        else:
            assert abs(height - 20 / aspect) <= 1.5, (height, 20 / aspect)
    row, column = centre_of_mass(prepared)
    assert abs(row - CENTRE) <= 0.6 and abs(column - CENTRE) <= 0.6, (row, column)


# ---- drawn digits: sizes, places, colours, formats ---------------------------------------------


PLACEMENTS = {
    "small, top left": ((120, 90), (3, 4, 25, 40)),
    "large, bottom right": ((900, 700), (560, 300, 210, 380)),
    "wide canvas, centred": ((640, 160), (290, 20, 60, 120)),
    "digit fills the image": ((90, 140), (0, 0, 90, 140)),
}


@pytest.mark.parametrize("digit", [ELLIPSE, 1, 4, 7, 2])
@pytest.mark.parametrize("placement", list(PLACEMENTS))
@pytest.mark.parametrize("dark_on_light", [True, False], ids=["dark on light", "light on dark"])
@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_a_drawn_digit_is_prepared_as_mnist(
    digit, placement, dark_on_light, suffix, tmp_path
) -> None:
    canvas, box = PLACEMENTS[placement]
    stroke = max(3, box[3] // 12)
    image = draw_digit(digit, canvas, box, stroke, dark_on_light)
    path = save(image, tmp_path / f"digit.{suffix}", **({"quality": 85} if suffix == "jpg" else {}))
    prepared = read_digit(path)
    drawn = np.asarray(image) < 128 if dark_on_light else np.asarray(image) >= 128
    drawn_height, drawn_width = ink_box(drawn)
    assert_prepared_as_mnist(prepared, aspect=drawn_width / drawn_height)


def test_both_colour_schemes_give_the_same_image(tmp_path) -> None:
    """Dark ink on paper is inverted into the light-on-black MNIST has; light on black is kept."""
    for digit in (ELLIPSE, 4, 7):
        dark = read_digit(save(draw_digit(digit, dark_on_light=True), tmp_path / "dark.png"))
        light = read_digit(save(draw_digit(digit, dark_on_light=False), tmp_path / "light.png"))
        assert np.array_equal(dark, light)
        # Inverted, not kept: the frame is black and the ink light (a wrong choice would give a
        # white frame, or no ink at all).
        assert dark[0, 0] == 0 and dark.max() == 255


def test_size_and_place_change_nothing_but_rounding(tmp_path) -> None:
    """The same digit drawn small in a corner and large off-centre prepares to nearly the same
    28 x 28 image."""
    small = read_digit(save(draw_digit(4, (100, 100), (5, 50, 24, 40), 4), tmp_path / "s.png"))
    large = draw_digit(4, (1200, 900), (700, 100, 300, 500), 50)
    large = read_digit(save(large, tmp_path / "l.jpg", quality=90))
    assert best_shifted_correlation(small, large) > 0.9


def test_grey_paper_and_coloured_ink(tmp_path) -> None:
    """A photo-like image: blue ink on light yellow-grey paper, in RGB, is still a light digit on
    black, and the same digit as black on white."""
    canvas, box = (400, 300), (150, 60, 100, 180)
    reference = read_digit(save(draw_digit(7, canvas, box), tmp_path / "bw.png"))
    mask = np.asarray(draw_digit(7, canvas, box)) < 128
    photo = np.empty((*mask.shape, 3), dtype=np.uint8)
    photo[:] = (215, 205, 170)  # paper
    photo[mask] = (30, 40, 120)  # ink
    prepared = read_digit(save(Image.fromarray(photo), tmp_path / "photo.jpg", quality=80))
    assert_prepared_as_mnist(prepared)
    assert best_shifted_correlation(reference, prepared) > 0.95


def test_a_transparent_background_counts_as_paper(tmp_path) -> None:
    """Black strokes on a transparent background (as drawing programs save them): the RGB of
    a transparent pixel is black too, so only the alpha channel tells ink from paper."""
    mask = draw_digit(4, dark_on_light=False)  # 255 where the ink is
    strokes = Image.new("RGBA", mask.size, (0, 0, 0, 0))
    strokes.putalpha(mask)
    reference = read_digit(save(draw_digit(4), tmp_path / "white.png"))
    assert np.array_equal(read_digit(save(strokes, tmp_path / "alpha.png")), reference)
    white_strokes = Image.new("RGBA", mask.size, (255, 255, 255, 0))
    white_strokes.putalpha(mask)
    assert np.array_equal(read_digit(save(white_strokes, tmp_path / "alpha2.png")), reference)


@pytest.mark.parametrize("mode", ["1", "P", "I;16", "RGB", "LA"])
def test_other_pixel_formats(mode, tmp_path) -> None:
    """Bilevel, palette, 16-bit grey, colour and grey-with-alpha files all read alike."""
    drawn = draw_digit(ELLIPSE)
    reference = read_digit(save(drawn, tmp_path / "L.png"))
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(drawn).astype(np.uint16) * 257)
    else:
        converted = drawn.convert(mode)
    assert np.array_equal(read_digit(save(converted, tmp_path / f"{mode[0]}.png")), reference)


def test_a_phone_photo_is_turned_as_taken(tmp_path) -> None:
    """A JPEG stored sideways with an EXIF orientation tag is turned upright first."""
    upright = draw_digit(7, (300, 400), (100, 100, 90, 160))
    reference = read_digit(save(upright, tmp_path / "upright.jpg", quality=95))
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # stored turned left
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90 degrees clockwise to view
    path = save(sideways, tmp_path / "sideways.jpg", quality=95, exif=exif)
    assert best_shifted_correlation(reference, read_digit(path)) > 0.98


def test_arrays_are_prepared_like_images() -> None:
    image = draw_digit(2)
    from_image = prepare_digit(image)
    assert np.array_equal(prepare_digit(np.asarray(image)), from_image)
    assert np.array_equal(prepare_digit(np.asarray(image) / 255.0), from_image)
    rgb = np.repeat(np.asarray(image)[:, :, None], 3, axis=2)
    assert np.array_equal(prepare_digit(rgb), from_image)
    with pytest.raises(FastnnError, match=r"\(H, W\)"):
        prepare_digit(np.zeros((2, 3, 5)))
    with pytest.raises(FastnnError, match="NaN"):
        prepare_digit(np.full((4, 4), np.nan))


# ---- real MNIST digits, rendered again ----------------------------------------------------------


def rerender(digit: np.ndarray, scale: int, canvas: tuple[int, int], at: tuple[int, int]):
    """A 28 x 28 MNIST digit enlarged `scale` times (bicubic), dark on light, pasted at `at`."""
    big = Image.fromarray(255 - digit).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    page = Image.new("L", canvas, 255)
    page.paste(big, at)
    return page


def test_a_real_mnist_digit_rendered_again_comes_back(tmp_path) -> None:
    """Real MNIST test digits, enlarged 5x, dark on light, off-centre on a larger page, saved as
    JPEG, and prepared: the images come back as MNIST had them (within a pixel's shift)."""
    from cli_helpers import real_mnist

    digits = real_mnist().test_images[:200].reshape(-1, 28, 28)
    correlations = []
    for index, digit in enumerate(digits):
        page = rerender(digit, 5, (420, 300), (240 - index % 7 * 30, 10 + index % 5 * 30))
        prepared = read_digit(save(page, tmp_path / f"{index}.jpg", quality=90))
        assert_prepared_as_mnist(prepared)
        correlations.append(best_shifted_correlation(digit, prepared))
    correlations = np.array(correlations)
    assert np.median(correlations) > 0.97, np.median(correlations)
    assert correlations.min() > 0.8, correlations.min()


def test_mnist_centres_its_digits_at_14_14() -> None:
    """The target of the centring, checked on the real test set: the mean centre of mass is
    (14, 14) and it varies by whole-pixel rounding only (a uniform spread of +-0.5 pixel has
    a standard deviation of 0.29)."""
    from cli_helpers import real_mnist

    centres = np.array([centre_of_mass(d) for d in real_mnist().test_images.reshape(-1, 28, 28)])
    assert np.allclose(centres.mean(axis=0), CENTRE, atol=0.05), centres.mean(axis=0)
    assert np.all(centres.std(axis=0) < 0.32), centres.std(axis=0)


def test_a_real_mnist_digit_is_nearly_a_fixed_point() -> None:
    """Preparing an MNIST digit again changes it by no more than MNIST's own rounding."""
    from cli_helpers import real_mnist

    digits = real_mnist().test_images[:300].reshape(-1, 28, 28)
    for digit in digits:
        again = prepare_digit(digit)
        assert_prepared_as_mnist(again)
        assert best_shifted_correlation(digit, again) > 0.98


# ---- bad files: FastnnError, one line, naming the file -------------------------------------------


def huge_png(path: Path) -> Path:
    """A valid PNG of 8000 x 5001 white pixels: just over 40 megapixels, 14 kB on disk."""
    Image.new("1", (8000, 5001), 1).save(path)
    return path


def truncated_png(path: Path) -> Path:
    save(draw_digit(7), path)
    path.write_bytes(path.read_bytes()[:300])
    return path


def text_file(path: Path) -> Path:
    path.write_text("this is not an image\n")
    return path


def empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def folder(path: Path) -> Path:
    path.mkdir()
    return path


BAD_FILES = {
    "text named .png": (text_file, "not an image"),
    "empty file": (empty_file, "empty"),
    "blank white": (lambda p: save(Image.new("L", (200, 100), 255), p), "blank"),
    "blank black": (lambda p: save(Image.new("RGB", (50, 50), (0, 0, 0)), p), "blank"),
    "faint smudge": (lambda p: save(draw_digit(4).point(lambda v: 240 + v // 16), p), "blank"),
    "huge": (huge_png, "40,000,000"),
    "truncated": (truncated_png, "cannot read the image"),
    "folder": (folder, "folder"),
    "missing": (lambda p: p, "no such file"),
}


@pytest.mark.parametrize("bad", list(BAD_FILES))
def test_a_bad_file_is_one_line_naming_it(bad, tmp_path) -> None:
    make, needle = BAD_FILES[bad]
    path = make(tmp_path / "digit.png")
    with pytest.raises(FastnnError) as raised:
        read_digit(path)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert needle in message


def test_without_pillow_the_message_says_how_to_install(tmp_path) -> None:
    """fastnn.images and fastnn.predict import without Pillow; reading an image says what to
    install."""
    path = save(draw_digit(1), tmp_path / "one.png")
    script = (
        "import sys; sys.modules['PIL'] = None\n"
        "import fastnn, fastnn.images, fastnn.predict\n"
        "from fastnn.errors import FastnnError\n"
        "try:\n"
        f"    fastnn.images.read_digit({str(path)!r})\n"
        "except FastnnError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 'pip install "fastnn-loops[plot]"' in done.stdout
