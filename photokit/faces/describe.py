"""Face descriptors of either kind from an image region and its 68 landmarks (``DescriptorKind``).

- dlib128: dlib's ResNet on the region and the landmarks' ``full_object_detection`` (its own alignment).
- facenet512: InceptionResnetV1 (facenet-pytorch, VGGFace2 weights) on a 160 px aligned crop, standardised
  as facenet-pytorch's ``fixed_image_standardization`` ((x - 127.5) / 128), output L2-normalised.
  The crop is the FFHQ square (``align.py``) narrowed to ``FACENET_FRAME`` of its side: FaceNet was trained
  on face boxes with a small margin (Schroff et al. 2015; facenet-pytorch's MTCNN crops), and the FFHQ
  square spans about 4 eye distances, of which the face box with margin takes about 70 %. Geometry
  only: without the real weights here, this framing could not be tuned on the development sets.
"""

from __future__ import annotations

import numpy as np

from photokit.faces.align import FaceAlignment, align_face

FACENET_SIZE = 160  # px: the input size facenet-pytorch's InceptionResnetV1 was trained on
FACENET_FRAME = 0.7  # the facenet crop's side as a fraction of the FFHQ square's


def facenet_crop(image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    """The (160, 160, 3) uint8 crop facenet describes, from ``image`` and landmarks in its pixels."""
    ffhq = FaceAlignment.from_landmarks68(landmarks68)
    narrowed = FaceAlignment(
        ffhq.center, tuple(np.multiply(ffhq.x, FACENET_FRAME)), tuple(np.multiply(ffhq.y, FACENET_FRAME))
    )
    return align_face(image, narrowed, FACENET_SIZE)


def facenet_descriptor(model, crop: np.ndarray) -> np.ndarray:
    """L2-normalised (512,) float32 descriptor of one 160 px RGB uint8 crop (the model normalises)."""
    import torch

    device = next(model.parameters()).device
    pixels = torch.from_numpy(np.ascontiguousarray(crop)).to(device=device, dtype=torch.float32)
    batch = ((pixels - 127.5) / 128.0).permute(2, 0, 1).unsqueeze(0)  # fixed_image_standardization
    with torch.inference_mode():
        return model(batch)[0].float().cpu().numpy()


def dlib_descriptor(model, image: np.ndarray, landmarks68: np.ndarray, jitters: int = 0) -> np.ndarray:
    """dlib's (128,) float32 descriptor of the face whose 68 landmarks (in ``image`` pixels) are given."""
    import dlib

    points = [dlib.point(int(round(x)), int(round(y))) for x, y in np.asarray(landmarks68).reshape(68, 2)]
    x0, y0 = np.floor(np.min(landmarks68, axis=0)).astype(int)
    x1, y1 = np.ceil(np.max(landmarks68, axis=0)).astype(int)
    shape = dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), points)
    return np.asarray(model.compute_face_descriptor(image, shape, jitters), dtype=np.float32)
