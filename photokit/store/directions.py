"""Edit-direction files in the model store: ``photokit models install NAME --from FILE.npy``.

A direction is a W-space vector for ``photokit edit`` (e.g. an InterFaceGAN boundary): a NumPy ``.npy``
array of shape (w_dim,), (1, w_dim) or (num_ws, w_dim). It is read with ``numpy.load(allow_pickle=False)``
(an object array, which would need unpickling, is refused), checked (numbers, finite, not all zero,
plausible sizes) and stored as float32 under ``<store>/directions/NAME.npy``. Whether it fits a generator
(its w_dim and num_ws) is checked when it is used, against that generator.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from photokit.errors import PhotokitError
from photokit.store.atomic import atomic_path
from photokit.store.catalog import CATALOG, CatalogEntry

if TYPE_CHECKING:
    import numpy as np

DIRECTION = "direction"
SUBDIR = "directions"
SUFFIX = ".npy"
MAX_W_DIM = 4096
MAX_NUM_WS = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Names ``photokit edit`` already gives to directions (personal attributes and SeFa).
RESERVED = ("yaw", "pitch", "smile", "mouth", "eyes", "years")


def check_name(name: str) -> str:
    """A direction's name must be a plain, new word (it becomes a file name and an ``--edit`` key)."""
    if not _NAME.match(name) or name.endswith(SUFFIX):
        raise PhotokitError(
            f"'{name}' cannot name a direction: use letters, digits, '-', '_' or '.', e.g. smile-interfacegan"
        )
    if name in RESERVED or re.fullmatch(r"sefa-\d+", name):
        raise PhotokitError(f"'{name}' is the name of a built-in edit direction: choose another name")
    if any(entry.name == name for entry in CATALOG):
        raise PhotokitError(f"'{name}' is a catalog model, not a direction: choose another name")
    return name


def direction_entry(name: str) -> CatalogEntry:
    """The store's description of an installed (or to be installed) direction called ``name``."""
    return CatalogEntry(
        name=name,
        kind=DIRECTION,
        filename=f"{name}{SUFFIX}",
        title=f"edit direction '{name}' (W-space vector)",
        unlocks=f"edits of a person's photos along this direction ({name}=AMOUNT)",
        get_it="a .npy file you have, installed from the file",
        required=False,
    )


def is_direction_file(path: str | Path | None) -> bool:
    return path is not None and Path(path).suffix.lower() == SUFFIX


def read_direction(path: str | Path) -> np.ndarray:
    """The checked float32 array of a direction file (PhotokitError, one line, when it is not one)."""
    import numpy as np  # here, not at the top: `models list` and `status` import this module and must start fast

    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise PhotokitError(f"{path.name} is not a plain NumPy array ({exc}); photokit never unpickles") from None
    except (OSError, EOFError) as exc:
        raise PhotokitError(f"cannot read {path.name} as a .npy file ({exc})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise PhotokitError(f"{path.name} holds {getattr(array, 'dtype', type(array))}, not numbers")
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim not in (1, 2) or array.shape[-1] < 2 or array.shape[-1] > MAX_W_DIM:
        raise PhotokitError(f"{path.name} has shape {array.shape}: a direction is (w_dim,) or (num_ws, w_dim)")
    if array.ndim == 2 and array.shape[0] > MAX_NUM_WS:
        raise PhotokitError(f"{path.name} has {array.shape[0]} rows: a generator has at most {MAX_NUM_WS} ws")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise PhotokitError(f"{path.name} contains NaN or infinite values")
    if not np.abs(array).max() > 0:
        raise PhotokitError(f"{path.name} is all zeros: not a direction")
    return array


def install_direction(source: Path, target: Path) -> np.ndarray:
    """Check ``source`` and write it to ``target`` as float32, atomically."""
    import numpy as np

    array = read_direction(source)
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
    return array


def installed_directions(models_root: Path) -> dict[str, Path]:
    """name -> file of every direction in the store."""
    folder = Path(models_root) / SUBDIR
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob(f"*{SUFFIX}")) if _NAME.match(p.stem) and not p.name.startswith(".")}
