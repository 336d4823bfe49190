"""Faces: detection, landmarks, FFHQ alignment, embeddings, quality, identity clustering, people."""
