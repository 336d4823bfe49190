"""Reading a photo with everything a faithful output must keep, and writing the restored photo atomically.

Kept: pixel values at their bit depth (8 or 16 bit), the alpha channel, grayscale-ness, the ICC profile
(when it fits the written pixels: see ``icc_profile_for``) and the EXIF block (with the orientation tag
reset to 1, since the pixels are stored upright). Originals are never written to: outputs are new files,
written through a temp file and a rename.

Limits: 16-bit colour TIFF is written by OpenCV, which keeps pixels and alpha but not ICC/EXIF (16-bit
PNG keeps both: the chunks are added by hand). Formats photokit cannot write faithfully (HEIC, GIF,
BMP, ...) are written as PNG.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from photokit.errors import PhotokitError
from photokit.library.images import SIXTEEN_BIT_MODES, DecodedImage, decode_image, orient_array, upright_exif_bytes
from photokit.store.atomic import atomic_path

_WRITABLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")


@dataclass
class Photo:
    """An upright photo as float32 in [0, 1] plus what its output must preserve."""

    path: Path
    format: str  # Pillow's name for the source format
    rgb: np.ndarray  # (H, W, 3) float32 in [0, 1]
    alpha: np.ndarray | None  # (H, W) float32 in [0, 1]
    gray: bool  # a black-and-white photo: restored faces must stay black-and-white
    bit_depth: int  # 8 or 16
    icc_profile: bytes | None
    exif: bytes | None  # orientation already reset to 1

    @property
    def shape(self) -> tuple[int, int]:
        return self.rgb.shape[:2]

    def rgb_uint8(self) -> np.ndarray:
        return to_uint(self.rgb, 8)


def to_uint(image: np.ndarray, bit_depth: int) -> np.ndarray:
    peak = 65535 if bit_depth == 16 else 255
    return np.clip(np.rint(image * peak), 0, peak).astype(np.uint16 if bit_depth == 16 else np.uint8)


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as fh:
        head = fh.read(26)
    return head[24] if len(head) >= 26 and head[12:16] == b"IHDR" else 8


def _sixteen_bit(decoded: DecodedImage, path: Path) -> bool:
    if decoded.mode in SIXTEEN_BIT_MODES:
        return True
    if decoded.format == "PNG" or path.suffix.lower() == ".png":
        return _png_bit_depth(path) == 16
    if decoded.format == "TIFF":
        return bool(decoded.sample_bits) and max(decoded.sample_bits) == 16
    return False


def load_photo(path: str | Path) -> Photo:
    """Decode a photo (raising ``ImageReadError`` for missing, corrupt or non-image files)."""
    path = Path(path)
    decoded = decode_image(path)  # validated, fully decoded, upright; ImageReadError otherwise
    image, fmt, raw_orientation = decoded.image, decoded.format, decoded.orientation
    sixteen = _sixteen_bit(decoded, path)
    info = image.info
    exif_bytes = upright_exif_bytes(image)
    gray_mode = image.mode in ("L", "LA", "1") + SIXTEEN_BIT_MODES
    alpha = None
    if sixteen:
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None or raw.dtype != np.uint16:
            sixteen = False
        else:
            raw = orient_array(raw, raw_orientation)
            values = raw.astype(np.float32) / 65535.0
            if values.ndim == 2:
                rgb = np.repeat(values[:, :, None], 3, axis=2)
            else:
                channels = values.shape[2]
                rgb = values[:, :, 2::-1] if channels >= 3 else np.repeat(values[:, :, :1], 3, axis=2)
                if channels in (2, 4):
                    alpha = values[:, :, -1]
            rgb = np.ascontiguousarray(rgb)
    if not sixteen:
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in info):
            rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
            rgb, alpha = np.ascontiguousarray(rgba[:, :, :3]), np.ascontiguousarray(rgba[:, :, 3])
        else:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    gray = gray_mode or bool(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max() < 1.5 / 255.0)
    return Photo(
        path=path,
        format=fmt,
        rgb=rgb,
        alpha=alpha,
        gray=gray,
        bit_depth=16 if sixteen else 8,
        icc_profile=info.get("icc_profile") or None,
        exif=exif_bytes,
    )


def output_path_for(
    source: Path, out_dir: Path | None, suffix: str = "_restored", subfolder: Path | None = None
) -> Path:
    """Where the restored copy of ``source`` goes: ``out_dir`` (default: next to it), with ``suffix``.

    ``subfolder`` is the photo's folder relative to the album it was found in: under ``out_dir`` the
    album's structure is rebuilt, so ``2019/IMG_1.jpg`` and ``2020/IMG_1.jpg`` get different outputs.
    The format is kept where photokit can write it faithfully, else PNG. Never the source itself.
    """
    ext = source.suffix.lower() if source.suffix.lower() in _WRITABLE_SUFFIXES else ".png"
    if out_dir is None:
        folder = source.parent
    else:
        folder = out_dir / subfolder if subfolder is not None else out_dir
    target = folder / f"{source.stem}{suffix}{ext}"
    if target.resolve() == source.resolve():
        target = folder / f"{source.stem}{suffix or '_restored'}_1{ext}"
    return target


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_with_metadata(png: bytes, icc: bytes | None, exif: bytes | None) -> bytes:
    """Insert iCCP and eXIf chunks right after IHDR (where the PNG spec wants them, before IDAT)."""
    ihdr_end = 8 + 8 + 13 + 4
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if exif:
        payload = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
        extra += _png_chunk(b"eXIf", payload)
    return png[:ihdr_end] + extra + png[ihdr_end:]


def save_photo(photo: Photo, rgb: np.ndarray, alpha: np.ndarray | None, target: Path) -> Path:
    """Write ``rgb`` (H, W, 3 float in [0, 1]) and ``alpha`` like ``photo`` was stored, atomically."""
    target = Path(target)
    if target.exists() and target.resolve() == photo.path.resolve():
        raise PhotokitError(f"refusing to overwrite the original {photo.path}")
    ext = target.suffix.lower()
    if photo.gray:
        rgb = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    try:
        with atomic_path(target) as tmp:
            if photo.bit_depth == 16 and ext in (".png", ".tif", ".tiff"):
                _save_16bit(photo, rgb, alpha, tmp, ext)
            else:
                _save_8bit(photo, rgb, alpha, tmp, ext)
    except OSError as exc:
        raise PhotokitError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


def icc_profile_for(icc: bytes | None, gray: bool) -> bytes | None:
    """``icc`` if it describes the written pixels: a grayscale file needs a GRAY profile, an RGB file an RGB
    one (an RGB profile on a one-channel PNG/JPEG is invalid, and viewers reject or misuse it). A
    gray-looking RGB photo is written as grayscale, so its RGB profile is dropped; so is a CMYK profile
    of a photo decoded to RGB."""
    if not icc or len(icc) < 20:
        return None
    return icc if icc[16:20] == (b"GRAY" if gray else b"RGB ") else None  # header: data colour space


def _save_8bit(photo: Photo, rgb: np.ndarray, alpha: np.ndarray | None, tmp: Path, ext: str) -> None:
    pixels = to_uint(rgb, 8)
    mode = "L" if pixels.ndim == 2 else "RGB"
    if alpha is not None and ext not in (".jpg", ".jpeg"):
        a = to_uint(alpha, 8)
        pixels = np.dstack([pixels, a])
        mode = "LA" if mode == "L" else "RGBA"
    image = Image.fromarray(pixels, mode)
    kwargs: dict = {}
    icc = icc_profile_for(photo.icc_profile, gray=mode in ("L", "LA"))
    if icc:
        kwargs["icc_profile"] = icc
    if photo.exif:
        kwargs["exif"] = photo.exif
    if ext in (".jpg", ".jpeg"):
        image.save(tmp, "JPEG", quality=95, subsampling=0, **kwargs)
    elif ext == ".webp":
        image.save(tmp, "WEBP", quality=95, **kwargs)
    elif ext in (".tif", ".tiff"):
        image.save(tmp, "TIFF", compression="tiff_deflate", **kwargs)
    else:
        image.save(tmp, "PNG", **kwargs)


def _save_16bit(photo: Photo, rgb: np.ndarray, alpha: np.ndarray | None, tmp: Path, ext: str) -> None:
    pixels = to_uint(rgb, 16)
    icc = icc_profile_for(photo.icc_profile, gray=pixels.ndim == 2)
    if pixels.ndim == 3:
        pixels = pixels[:, :, ::-1]  # OpenCV wants BGR
    if alpha is not None:
        a = to_uint(alpha, 16)
        pixels = np.dstack([pixels, a])
    ok, encoded = cv2.imencode(".png" if ext == ".png" else ".tiff", np.ascontiguousarray(pixels))
    if not ok:
        raise PhotokitError(f"could not encode a 16-bit {ext} image")
    data = encoded.tobytes()
    if ext == ".png":
        data = _png_with_metadata(data, icc, photo.exif)
    tmp.write_bytes(data)
