"""HTML pages for `enhance --report` and `eval --out`: one self-contained file, crops embedded as PNG.

Presentation only: the pages are built from the dataclasses and JSON reports the lower layers return.
"""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

import cv2
import numpy as np

from photokit.errors import PhotokitError
from photokit.restore.crops import REPORT_CROP_PX

THUMB = REPORT_CROP_PX

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em}
.warn{background:#fff3cd;border:1px solid #e0c060;padding:.6em 1em;margin:.5em 0}
.face{display:flex;gap:1em;align-items:flex-start;border-top:1px solid #ddd;padding:1em 0}
figure{margin:0;text-align:center;font-size:.85em} img{width:192px;height:192px;image-rendering:auto}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4} td.l,th.l{text-align:left}
.ok{color:#176c2c;font-weight:600} .bad{color:#a01818;font-weight:600} .forced{color:#a05a00;font-weight:600}
"""


def png_data_uri(image: np.ndarray, size: int = THUMB) -> str:
    """(H, W, 3) float RGB in [0, 1] (or uint8) -> a ``data:image/png`` URI of a ``size`` px square."""
    from PIL import Image

    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(np.rint(array * 255), 0, 255).astype(np.uint8)
    if array.shape[0] != size:
        interpolation = cv2.INTER_AREA if array.shape[0] > size else cv2.INTER_LANCZOS4
        array = cv2.resize(array, (size, size), interpolation=interpolation)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(image: np.ndarray | None, caption: str) -> str:
    if image is None:
        return ""
    return f'<figure><img src="{png_data_uri(image)}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'


def _page(title: str, body: list[str]) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>" + "\n".join(body) + "</body></html>\n"
    )


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}g}" if isinstance(value, float) else escape(str(value))


def _verdict(face: dict) -> str:
    checks = face.get("checks") or {}
    if face.get("forced"):
        return '<span class="forced">FORCED (failed the checks, pasted because of --force)</span>'
    if face.get("status") == "restored":
        return '<span class="ok">restored (passed the checks)</span>'
    if face.get("status") == "rejected" or checks.get("passed") is False:
        return '<span class="bad">rejected: left as it was</span>'
    return '<span class="bad">left as it was</span>'


def _face_block(face: dict, crops: tuple[np.ndarray, np.ndarray] | None) -> str:
    who = face.get("person") or (f"person {face['person_id']}" if face.get("person_id") else "unknown person")
    checks = face.get("checks") or {}
    rows = [
        (
            "routed to",
            f"{who}"
            + (
                f" (by {face['identified_by']}, distance {face['distance']})"
                if face.get("distance") is not None
                else ""
            ),
        ),
        ("prior", face.get("prior_name") or face.get("prior")),
        ("verdict", None),
        ("reason", face.get("reason") or checks.get("reason")),
        ("consistency PSNR (dB)", checks.get("consistency_psnr")),
        (f"identity distance (to {checks.get('identity_against', 'references')})", checks.get("identity_distance")),
        ("input face's distance", checks.get("input_distance")),
        ("reference faces", checks.get("references")),
        ("steps / loss", f"{face.get('steps')} / {_fmt(face.get('loss'))}"),
    ]
    cells = []
    for label, value in rows:
        shown = _verdict(face) if label == "verdict" else _fmt(value)
        cells.append(f'<tr><th class="l">{escape(label)}</th><td class="l">{shown}</td></tr>')
    figures = "" if crops is None else _figure(crops[0], "input face") + _figure(crops[1], "restoration")
    return f'<div class="face">{figures}<div><b>face {face["index"] + 1}</b><table>{"".join(cells)}</table></div></div>'


def enhance_report_html(reports: list[dict], crops: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]) -> str:
    """The `enhance --report` page: per photo, per face, before/after crops, routing, prior and check scores."""
    body = []
    for report in reports:
        body.append(f"<h2>{escape(Path(report['source']).name)} → {escape(str(report.get('output')))}</h2>")
        body += [f'<div class="warn">{escape(w)}</div>' for w in report.get("warnings", [])]
        for face in report["faces"]:
            body.append(_face_block(face, crops.get((report["source"], face["index"]))))
    if not reports:
        body.append("<p>No photo was restored in this run.</p>")
    return _page("photokit enhance report", body)


def report_path(path: Path | None) -> Path | None:
    """An HTML report's path: checked before any work, so a typo does not cost a long run."""
    if path is None:
        return None
    path = path.expanduser()
    if path.is_dir() or path.suffix.lower() not in (".html", ".htm"):
        raise PhotokitError(f"{path}: give an .html file name for the report, e.g. report.html")
    return path


def write_html(path: Path, html: str) -> None:
    from photokit.store.atomic import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, html)


def eval_report_html(evaluation) -> str:
    """The `eval --out` page: summary table per task and method, then each held-out face's crops side by side."""
    split, result = evaluation.split, evaluation.result
    who = split.person_name or f"person {split.person_id}"
    body = [f'<div class="warn">{escape(w)}</div>' for w in evaluation.warnings]
    if not evaluation.meaningful:
        body.append(
            '<div class="warn"><b>These numbers mean nothing about faces</b>: the generator is not a pretrained face model.</div>'
        )
    body.append(
        f"<p>{len(split.train)} training faces, {len(split.held_out)} held out; base generator "
        f"{escape(str(evaluation.base.get('name')))} at {evaluation.base.get('resolution')} px; "
        f"{evaluation.projection_steps} projection steps; prior {'reused' if evaluation.prior_reused else 'built'} "
        f"({escape(evaluation.prior_cache)}). Identity: dlib descriptor distance to the nearest training face "
        "(lower is better, the same person is under 0.5).</p>"
    )
    head = "".join(f"<th>{h}</th>" for h in ("task", "method", "faces", "PSNR dB", "LPIPS", "identity", "face found"))
    rows = [
        f'<tr><td class="l">{s.task}</td><td class="l">{s.method}</td><td>{s.samples}</td><td>{s.psnr_mean:.2f}</td>'
        f"<td>{_fmt(s.lpips_mean)}</td><td>{_fmt(s.identity_mean)}</td><td>{s.faces_found}/{s.samples}</td></tr>"
        for s in result.summaries()
    ]
    body.append(f"<table><tr>{head}</tr>{''.join(rows)}</table>")
    scores = {(s.face_id, s.task, s.method): s for s in result.samples}
    for (face_id, task), crops in result.crops.items():
        figures = []
        for name, image in crops.items():
            s = scores.get((face_id, task, name))
            caption = name if s is None else f"{name}: {s.psnr:.1f} dB, id {_fmt(s.identity_distance)}"
            figures.append(_figure(image, caption))
        body.append(f'<h2>face {face_id}, {escape(task)}</h2><div class="face">{"".join(figures)}</div>')
    return _page(f"photokit eval: {who}", body)
