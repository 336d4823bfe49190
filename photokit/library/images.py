"""Reading photos safely: formats recognised by content, full decodes, EXIF orientation applied.

A photo library holds files of every kind (renamed PNGs, videos, half-copied JPEGs), so nothing here
trusts an extension. Every failure is an ``ImageReadError`` whose ``reason`` is one of ``REASONS``
and whose message is a single line the CLI can print as is.
"""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from photokit.errors import PhotokitError

try:  # optional extra: photokit[heic]
    import pillow_heif
except ImportError:  # pragma: no cover - depends on the installation
    pillow_heif = None
else:
    pillow_heif.register_heif_opener()

HEIC_AVAILABLE = pillow_heif is not None

# Damaged EXIF is common and read best effort here (a skipped tag loses nothing a photo needs). Pillow warns
# once per damaged tag, which reached the user as raw Python warnings (file paths, source lines) mid-scan.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")

REASONS = ("empty", "not_image", "corrupt", "truncated", "unreadable", "missing")
_REASON_TEXT = {
    "empty": "empty file (0 bytes)",
    "not_image": "not an image",
    "corrupt": "corrupt image",
    "truncated": "truncated image (the file ends early)",
    "unreadable": "cannot be read",
    "missing": "no such file",
}

# Our format name -> Pillow's plugin name (Image.open is restricted to the sniffed one).
_PIL_FORMATS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "gif": "GIF",
    "webp": "WEBP",
    "tiff": "TIFF",
    "bmp": "BMP",
    "heic": "HEIF",
}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_BMP_DIB_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}
_SNIFF_BYTES = 32

_EXIF_ORIENTATION, _EXIF_MAKE, _EXIF_MODEL, _EXIF_DATETIME = 274, 271, 272, 306
_EXIF_IFD, _EXIF_DATETIME_ORIGINAL, _EXIF_DATETIME_DIGITIZED = 0x8769, 36867, 36868


class ImageReadError(PhotokitError):
    """A file that cannot be used as a photo. ``reason`` is one of ``REASONS``."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        self.path = Path(path)
        self.reason = reason
        self.detail = " ".join(str(detail).split())
        super().__init__(f"{path}: {_REASON_TEXT[reason]}" + (f" ({self.detail})" if self.detail else ""))


@dataclass(frozen=True)
class ImageInfo:
    """What the library records about a photo. ``width``/``height`` are after EXIF orientation."""

    format: str
    width: int
    height: int
    orientation: int | None
    taken_at: datetime | None
    camera_make: str | None
    camera_model: str | None


def sniff_bytes(head: bytes) -> str | None:
    """The image format that a file's first bytes announce, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_DIB_HEADER_SIZES:
        return "bmp"
    if head[4:8] == b"ftyp":
        box_size = int.from_bytes(head[:4], "big")
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
        if brands & _HEIF_BRANDS and b"avif" not in brands and b"avis" not in brands:
            return "heic"
    return None


def sniff_format(path: str | os.PathLike) -> str | None:
    """Format by content ('jpeg', 'png', 'gif', 'webp', 'tiff', 'bmp', 'heic'), never by extension."""
    try:
        with open(path, "rb") as fh:
            return sniff_bytes(fh.read(_SNIFF_BYTES))
    except OSError:
        return None


def _classify_decode_error(path: Path, fmt: str, exc: BaseException) -> ImageReadError:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, Image.DecompressionBombError):
        return ImageReadError(path, "unreadable", f"too many pixels: {text}")
    if isinstance(exc, EOFError) or "truncat" in text.lower() or "premature" in text.lower():
        return ImageReadError(path, "truncated", f"{fmt}: {text}")
    return ImageReadError(path, "corrupt", f"{fmt}: {text}")


def _open_lazy(path: str | os.PathLike) -> tuple[Image.Image, str]:
    """Check the file and open it with the Pillow plugin its content names (pixels not decoded yet)."""
    path = Path(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ImageReadError(path, "unreadable", "not a regular file")
        if st.st_size == 0:
            raise ImageReadError(path, "empty")
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except FileNotFoundError:
        raise ImageReadError(path, "missing") from None
    except OSError as exc:
        raise ImageReadError(path, "unreadable", exc.strerror or str(exc)) from None
    fmt = sniff_bytes(head)
    if fmt is None:
        raise ImageReadError(path, "not_image")
    if fmt == "heic" and not HEIC_AVAILABLE:
        raise ImageReadError(
            path, "unreadable", "HEIC needs the optional pillow-heif package: pip install 'photokit[heic]'"
        )
    try:
        return Image.open(path, formats=[_PIL_FORMATS[fmt]]), fmt
    except UnidentifiedImageError:
        raise ImageReadError(path, "corrupt", f"{fmt} header cannot be decoded") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise _classify_decode_error(path, fmt, exc) from None


def _decode(image: Image.Image, path: Path, fmt: str) -> None:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise _classify_decode_error(path, fmt, exc) from None
    if fmt == "png" and not _png_has_end(path):  # Pillow accepts a PNG cut just after its pixel data
        raise ImageReadError(path, "truncated", "png: no IEND chunk at the end of the file")


def _png_has_end(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            return b"IEND" in fh.read()
    except OSError:
        return False


def open_image(path: str | os.PathLike) -> Image.Image:
    """The photo fully decoded (so truncation is caught) and turned upright by its EXIF orientation."""
    return decode_image(path).image


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB from any Pillow mode (palette, alpha, CMYK, 16-bit grey...)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = np.asarray(image, dtype=np.float64)
        scale = 255.0 / 65535.0 if grey.max(initial=0) > 255 else 1.0
        grey = np.clip(grey * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "F":
        grey = np.clip(np.asarray(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB, upright. Raises ``ImageReadError``."""
    return to_rgb_array(open_image(path))


def _clean_text(value: object, limit: int = 128) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = " ".join(value.replace("\x00", " ").split())
    return text[:limit] or None


def parse_exif_datetime(value: object) -> datetime | None:
    """EXIF 'YYYY:MM:DD HH:MM:SS' (tolerating NULs, '-' separators, sub-seconds); None if unusable."""
    text = _clean_text(value, limit=64)
    if not text:
        return None
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M", "%Y:%m:%d"):
        try:
            return datetime.strptime(text[: len(datetime(2000, 1, 1).strftime(fmt))], fmt)
        except ValueError:
            continue
    return None


# Pillow modes of 16-bit (and 32-bit integer) greyscale photos: scan and enhance agree on what "16-bit" is.
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def exif_orientation(image: Image.Image) -> int:
    """EXIF orientation 1-8; 1 when it is missing or damaged. The one reading scan and enhance share."""
    return _exif_fields(image)[0] or 1


def upright_exif_bytes(image: Image.Image) -> bytes | None:
    """The EXIF block an output keeps, its orientation reset to 1 (the pixels are upright); None when the
    photo has none, or one too damaged to write back."""
    try:
        exif = image.getexif()
        if not len(exif):
            return None
        exif[_EXIF_ORIENTATION] = 1
        return exif.tobytes()
    except Exception:
        return None


def orient_array(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 1-8 to an (H, W[, C]) array, as Pillow's exif_transpose does."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](array)) if orientation in ops else array


def _exif_fields(image: Image.Image) -> tuple[int | None, datetime | None, str | None, str | None]:
    """(orientation, taken_at, make, model); EXIF is often damaged, so every field is best effort."""
    try:
        exif = image.getexif()
    except Exception:
        return None, None, None, None
    orientation = exif.get(_EXIF_ORIENTATION)
    orientation = orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else None
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:
        sub = {}
    taken = None
    for value in (sub.get(_EXIF_DATETIME_ORIGINAL), sub.get(_EXIF_DATETIME_DIGITIZED), exif.get(_EXIF_DATETIME)):
        taken = parse_exif_datetime(value)
        if taken is not None:
            break
    return orientation, taken, _clean_text(exif.get(_EXIF_MAKE)), _clean_text(exif.get(_EXIF_MODEL))


def probe_image(path: str | os.PathLike) -> ImageInfo:
    """Validate a file as a photo and read what the library records about it.

    The whole stream is decoded, so truncation and corruption are caught; JPEGs are decoded at 1/8
    scale (libjpeg's DCT scaling still reads every byte), about 1.6x faster than a full decode on
    12-14 MP camera JPEGs.
    """
    image, fmt = _open_lazy(path)
    with image:
        width, height = image.size
        orientation, taken_at, make, model = _exif_fields(image)
        if fmt == "jpeg":
            image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
        _decode(image, Path(path), fmt)
    if orientation in (5, 6, 7, 8):  # rotated by 90 or 270 degrees
        width, height = height, width
    return ImageInfo(
        format=fmt,
        width=width,
        height=height,
        orientation=orientation,
        taken_at=taken_at,
        camera_make=make,
        camera_model=model,
    )


@dataclass
class DecodedImage:
    """A photo decoded from one open of its file: the upright pixels and what the file itself says."""

    image: Image.Image  # fully decoded (truncation caught), turned upright by its EXIF orientation
    format: str  # Pillow's format name: JPEG, PNG, TIFF...
    orientation: int  # the file's EXIF orientation, 1-8
    mode: str  # the file's own Pillow mode (16-bit greys are SIXTEEN_BIT_MODES)
    sample_bits: tuple[int, ...] = ()  # TIFF bits per sample (16-bit colour TIFFs decode as 8-bit modes)


def decode_image(path: str | os.PathLike) -> DecodedImage:
    """Open the file once: validate and decode it, read its EXIF orientation and mode, turn it upright."""
    image, fmt = _open_lazy(path)
    with image:
        _decode(image, Path(path), fmt)
        orientation = exif_orientation(image)
        bits = getattr(image, "tag_v2", {}).get(258) if image.format == "TIFF" else None
        sample_bits = tuple(bits) if isinstance(bits, tuple) else (bits,) if bits else ()
        try:
            upright = ImageOps.exif_transpose(image)
        except Exception:  # a broken EXIF block must not make a good photo unusable
            upright = image.copy()
        return DecodedImage(upright, image.format or "PNG", orientation, image.mode, sample_bits)
