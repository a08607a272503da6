"""Image checks and re-encoding with Pillow: the type from the content, pixels bounded before decoding."""
from __future__ import annotations

from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError

from webapp.errors import Invalid, PayloadTooLarge, UnsupportedMediaType

# Pillow format name → the extension of the stored file.
FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
THUMBNAIL_SIZES = (64, 256)


class ImageError(Exception):
    """A stored image Pillow cannot decode: the background task fails with this, cleanly."""


def reencode_upload(data: bytes, *, max_bytes: int, max_pixels: int) -> tuple[bytes, str]:
    """Check an upload and re-encode it without metadata; returns (bytes, extension).

    413 above `max_bytes`, 415 unless the content is PNG, JPEG or WebP, 422 when the header
    declares more than `max_pixels` (checked before any pixel is decoded) or the data is corrupt.
    """
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"The file must be at most {max_bytes // (1024 * 1024)} MiB.",
                              errors={"file": [f"Larger than {max_bytes} bytes."]})
    try:
        image = Image.open(BytesIO(data), formats=list(FORMATS))  # reads the header only
    except Image.DecompressionBombError:  # Pillow's own (higher) limit, also from the header
        raise Invalid("The image is too large.", errors={"file": [f"Its size exceeds {max_pixels} pixels."]}) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise UnsupportedMediaType("The file must be a PNG, JPEG or WebP image.",
                                   errors={"file": ["Not a PNG, JPEG or WebP image."]}) from None
    width, height = image.size
    if width * height > max_pixels or width <= 0 or height <= 0:
        raise Invalid("The image is too large.",
                      errors={"file": [f"{width}x{height} exceeds {max_pixels} pixels."]})
    extension = FORMATS[image.format]
    try:
        clean = _strip(image)
        return _encode(clean, image.format), extension
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise Invalid("The image is corrupt.", errors={"file": ["The image cannot be decoded."]}) from None


def thumbnail(data: bytes, size: int) -> bytes:
    """A size x size centre crop of a stored (already clean) image, in its own format."""
    try:
        image = Image.open(BytesIO(data), formats=list(FORMATS))
        fmt = image.format
        image.load()
        return _encode(ImageOps.fit(_rgb(image), (size, size), Image.Resampling.LANCZOS), fmt)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot make a {size}px thumbnail: {exc}") from exc


def _rgb(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _strip(image: Image.Image) -> Image.Image:
    """Decode, apply the EXIF orientation, and copy the pixels into a new image with no metadata."""
    image.load()
    oriented = _rgb(ImageOps.exif_transpose(image))
    return Image.frombytes(oriented.mode, oriented.size, oriented.tobytes())


def _encode(image: Image.Image, fmt: str) -> bytes:
    if fmt == "JPEG" and image.mode != "RGB":
        image = image.convert("RGB")
    out = BytesIO()
    options = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
    image.save(out, format=fmt, **options)
    return out.getvalue()
