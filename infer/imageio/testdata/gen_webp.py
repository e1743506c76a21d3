"""Writes the WebP test images of infer/imageio (Go has no WebP encoder).

Run from the repository root with the project venv (Pillow with libwebp):

    .venv/bin/python infer/imageio/testdata/gen_webp.py

Every image is the synthetic 32x24 "blocks" pattern of imageio_test.go
(blocksColour): a 4x3 grid of 8x8 solid blocks, all colours distinct; the
alpha variants make the left half semi-transparent. No photos.
"""

import pathlib

from PIL import Image

HERE = pathlib.Path(__file__).parent
BLOCK = 8


def colour(bx: int, by: int) -> tuple[int, int, int]:
    """Block (bx, by)'s colour; must match blocksColour in imageio_test.go."""
    return (40 + 60 * bx, 40 + 80 * by, 200 - 40 * bx - 30 * by)


def blocks(alpha: bool) -> Image.Image:
    """The 4x3 block pattern, RGBA when alpha is set."""
    img = Image.new("RGBA" if alpha else "RGB", (4 * BLOCK, 3 * BLOCK))
    for y in range(3 * BLOCK):
        for x in range(4 * BLOCK):
            c = colour(x // BLOCK, y // BLOCK)
            img.putpixel((x, y), c + ((128 if x < 2 * BLOCK else 255),) if alpha else c)
    return img


def main() -> None:
    """Writes the four files beside this script."""
    blocks(False).save(HERE / "blocks.lossless.webp", lossless=True)
    blocks(False).save(HERE / "blocks.lossy.webp", quality=95)
    blocks(True).save(HERE / "blocks-alpha.lossless.webp", lossless=True, exact=True)
    blocks(True).save(HERE / "blocks-alpha.lossy.webp", quality=95)


if __name__ == "__main__":
    main()
