"""What photokit measures on a person's reference photos, for personal edit directions.

From the 68 dlib landmarks stored for each face (iBUG 300-W numbering) and the photo's EXIF date:

- ``yaw``: head turn in degrees (``faces.quality.yaw_from_landmarks``, a cylinder model);
- ``pitch``: head tilt up/down in approximate degrees: where the nose tip (30) sits between the eye line
  and the chin (8), measured across the eye axis, through the same cylinder model as yaw. Its zero is not
  calibrated; a direction only uses differences between photos;
- ``smile``: mouth width (corners 48-54) in % of the distance between the eye centres;
- ``mouth``: mouth opening, the inner-lip gap (61-67, 62-66, 63-65) in % of the eye distance;
- ``eyes``: eye opening, the eye aspect ratio of Soukupova and Cech (2016) averaged over both eyes, in %;
- ``years``: the date the photo was taken (EXIF), in years.

Pure functions on arrays, plus ``reference_measures`` which reads the library at the edge.
"""

from __future__ import annotations

import numpy as np

from photokit.faces.quality import yaw_from_landmarks

ATTRIBUTES: dict[str, str] = {  # name -> unit of its amounts
    "yaw": "degrees",
    "pitch": "degrees (approximate)",
    "smile": "% of eye distance (mouth width)",
    "mouth": "% of eye distance (lip gap)",
    "eyes": "% (eye aspect ratio)",
    "years": "years (EXIF date)",
}

# Below this spread (standard deviation across the anchors) an attribute cannot be fitted: the person's
# photos do not show it changing. Chosen as a small but visible change in each unit.
MIN_SPREAD: dict[str, float] = {"yaw": 4.0, "pitch": 3.0, "smile": 3.0, "mouth": 3.0, "eyes": 2.0, "years": 1.0}


def _eye_centres(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)


def eye_distance(lm: np.ndarray) -> float:
    left, right = _eye_centres(lm)
    return float(np.hypot(*(right - left)))


def pitch_from_landmarks(lm: np.ndarray) -> float:
    """Approximate head pitch in degrees (positive: nose down); see the module docstring."""
    left, right = _eye_centres(lm)
    axis = right - left
    norm = np.hypot(*axis)
    if norm < 1e-6:
        return 0.0
    down = np.array([-axis[1], axis[0]]) / norm  # perpendicular to the eye axis, pointing to the chin
    eyes = (left + right) / 2
    nose, chin = float((lm[30] - eyes) @ down), float((lm[8] - eyes) @ down)
    if chin < 1e-6:
        return 0.0
    return float(np.degrees(np.arcsin(np.clip(2.0 * nose / chin - 1.0, -1.0, 1.0))))


def smile_width(lm: np.ndarray) -> float:
    return 100.0 * float(np.hypot(*(lm[54] - lm[48]))) / max(eye_distance(lm), 1e-6)


def mouth_opening(lm: np.ndarray) -> float:
    gap = np.mean([np.hypot(*(lm[a] - lm[b])) for a, b in ((61, 67), (62, 66), (63, 65))])
    return 100.0 * float(gap) / max(eye_distance(lm), 1e-6)


def eye_opening(lm: np.ndarray) -> float:
    def ear(p: np.ndarray) -> float:
        return (np.hypot(*(p[1] - p[5])) + np.hypot(*(p[2] - p[4]))) / max(2.0 * np.hypot(*(p[0] - p[3])), 1e-6)

    return 100.0 * float((ear(lm[36:42]) + ear(lm[42:48])) / 2)


def landmark_measures(landmarks68) -> dict[str, float]:
    """yaw, pitch, smile, mouth, eyes of one face from its 68 landmarks."""
    lm = np.asarray(landmarks68, dtype=np.float64).reshape(68, 2)
    return {
        "yaw": yaw_from_landmarks(lm),
        "pitch": pitch_from_landmarks(lm),
        "smile": smile_width(lm),
        "mouth": mouth_opening(lm),
        "eyes": eye_opening(lm),
    }


def decimal_year(moment) -> float:
    """A datetime as a decimal year (2019-07-02 -> ~2019.5)."""
    start = moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1)
    return moment.year + (moment - start).total_seconds() / (end - start).total_seconds()


def reference_measures(db, face_ids: list[int]) -> dict[str, list[float | None]]:
    """Every attribute for each reference face, in anchor order; None where it cannot be measured
    (no landmarks, no EXIF date, a face no longer in the library)."""
    from photokit.db.models import Face, Photo

    values: dict[str, list[float | None]] = {name: [] for name in ATTRIBUTES}
    with db.session(write=False) as session:
        for face_id in face_ids:
            face = session.get(Face, int(face_id))
            measured = landmark_measures(face.landmarks68) if face is not None and face.landmarks68 else {}
            photo = session.get(Photo, face.photo_id) if face is not None else None
            if photo is not None and photo.taken_at is not None:
                measured["years"] = decimal_year(photo.taken_at)
            for name in ATTRIBUTES:
                values[name].append(measured.get(name))
    return values
