"""`make demo`: build a small sample album from images that installed packages ship, then run the
main job on it exactly as a user would (scan with faces, people, models, enhance, status).

Everything goes to ``demo_output/`` (its own PHOTOKIT_HOME), so the user's real library is untouched.
The astronaut photo is NASA's public-domain portrait of Eileen Collins shipped by scikit-image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter


def build_album(album: Path) -> list[Path]:
    """The sample album: an original portrait, degraded copies of it, photos without faces, a duplicate,
    an EXIF-rotated copy and one broken file (the scan must skip it and go on)."""
    from skimage import data

    album.mkdir(parents=True, exist_ok=True)
    (album / "2019").mkdir(exist_ok=True)
    astronaut = Image.fromarray(data.astronaut())
    exif = Image.Exif()
    exif[0x010F] = "NASA"  # camera make
    exif[0x0110] = "demo"  # camera model
    exif.get_ifd(0x8769)[0x9003] = "1984:08:30 12:00:00"  # DateTimeOriginal
    astronaut.save(album / "astronaut.jpg", quality=95, exif=exif)
    # "Old photo" copies: small, soft, faded, grey, heavily compressed.
    small = astronaut.resize((128, 128), Image.Resampling.BOX)
    small.save(album / "astronaut_small_old.jpg", quality=70)
    soft = astronaut.resize((192, 192), Image.Resampling.BOX).filter(ImageFilter.GaussianBlur(1.2))
    faded = Image.fromarray((np.asarray(soft, np.float32) * 0.7 + 60).clip(0, 255).astype(np.uint8))
    faded.save(album / "2019" / "astronaut_faded.jpg", quality=40)
    astronaut.convert("L").save(album / "2019" / "astronaut_gray.png")
    rotated_exif = Image.Exif()
    rotated_exif[0x0112] = 6  # "rotate 90 CW to display"
    astronaut.transpose(Image.Transpose.ROTATE_90).save(album / "astronaut_rotated.jpg", exif=rotated_exif)
    Image.fromarray(data.coffee()).save(album / "coffee.jpg", quality=90)
    Image.fromarray(data.chelsea()).save(album / "2019" / "chelsea.png")
    shutil.copy2(album / "astronaut.jpg", album / "2019" / "astronaut_copy.jpg")  # a duplicate
    broken = (album / "coffee.jpg").read_bytes()
    (album / "broken_download.jpg").write_bytes(broken[: len(broken) // 3])  # truncated
    return sorted(p for p in album.rglob("*") if p.is_file())


def run_step(title: str, args: list[str], env: dict[str, str]) -> int:
    print(f"\n\033[1m$ photokit {' '.join(args)}\033[0m   # {title}", flush=True)
    return subprocess.call([sys.executable, "-m", "photokit", *args], env=env)


def main() -> int:
    out = Path(os.environ.get("PHOTOKIT_DEMO_DIR", "demo_output")).resolve()
    marker = out / ".photokit-demo"
    if out.exists():
        if not marker.is_file():
            print(f"{out} exists and was not made by the demo: move it away or set PHOTOKIT_DEMO_DIR", file=sys.stderr)
            return 2
        shutil.rmtree(out)
    out.mkdir(parents=True)
    marker.write_text("made by `make demo`; safe to delete\n")
    album, home, restored = out / "album", out / "home", out / "restored"
    files = build_album(album)
    print(f"sample album: {len(files)} files in {album}")
    env = dict(os.environ, PHOTOKIT_HOME=str(home))
    env.pop("PHOTOKIT_DB_URL", None)  # the demo's library lives in its own folder, never in the user's database
    steps = [
        ("index the album, detect and cluster faces", ["scan", str(album)]),
        ("who is who", ["people", "list", "--all"]),
        ("what is installed and what each model unlocks", ["models", "list"]),
        (
            "restore the small old copy at 4x",
            ["enhance", str(album / "astronaut_small_old.jpg"), "--scale", "4", "--out", str(restored)],
        ),
        ("library summary", ["status"]),
    ]
    failures = [title for title, args in steps if run_step(title, args, env) != 0]
    print("\nresults:")
    print(f"  album:       {album}")
    print(f"  library db:  {home / 'library.db'}")
    print(f"  restored:    {restored}")
    if failures:
        print(f"demo steps that failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
