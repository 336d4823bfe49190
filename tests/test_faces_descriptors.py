"""The optional 512-D facenet descriptor: installing its weights, scanning with it, never mixing kinds,
switching kinds (resumable). Weights are random (a state dict of facenet-pytorch's InceptionResnetV1 with
random values): never a fake of the pretrained file, and nothing here judges recognition quality."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from sqlalchemy import select
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.cli.hints import error_line
from photokit.db import open_database
from photokit.db.models import Face, Person, Photo
from photokit.errors import MissingModelError, PhotokitError
from photokit.faces.assignment import cluster_faces
from photokit.faces.cluster_config import ClusterConfig, cluster_config, distance_scale
from photokit.faces.descriptors import active_kind, set_active_kind
from photokit.faces.matching import LibraryFaces
from photokit.faces.people import embedding_to_bytes, identify
from photokit.faces.pipeline import process_pending_photos
from photokit.faces.vocab import DescriptorKind
from photokit.settings import Settings
from photokit.store.models import ModelStore
from tests.conftest import scan_faces_library, shared_path

FACENET = DescriptorKind.FACENET512
DLIB = DescriptorKind.DLIB128
PHOTOS = ("obama.jpg", "obama2.jpg", "biden.jpg")


def random_facenet_state(seed: int = 0) -> dict:
    """facenet-pytorch's architecture with random weights, plus the 8631-class head the published file has."""
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(seed)
    state = InceptionResnetV1(pretrained=None, classify=False).state_dict()
    state["logits.weight"] = torch.randn(8631, 512) * 0.01
    state["logits.bias"] = torch.zeros(8631)
    return state


@pytest.fixture
def facenet_weights(tmp_path):
    path = tmp_path / "20180402-114759-vggface2.pt"
    torch.save(random_facenet_state(), path)
    return path


def _install(path) -> None:
    ModelStore(Settings.load()).install("facenet-vggface2", from_file=path)


def _album(tmp_path, names=PHOTOS):
    album = tmp_path / "album"
    album.mkdir()
    for name in names:
        shutil.copy(shared_path("data", "faces", "face_recognition", name), album / name)
    return album


def _descriptors(db) -> list[tuple[int, int, str, bytes | None]]:
    with db.session() as session:
        rows = session.execute(select(Face.id, Face.photo_id, Face.descriptor_kind, Face.embedding).order_by(Face.id))
        return [tuple(r) for r in rows]


# -- installing the weights ---------------------------------------------------------------------------
def test_install_accepts_the_architecture_and_scan_refuses_without_it(facenet_weights, settings, tmp_path):
    runner = CliRunner()
    db = open_database(settings)
    try:
        # Not installed: switching is refused in one line and the library stays on dlib.
        with pytest.raises(MissingModelError, match="facenet-vggface2 weights") as refused:
            process_pending_photos(db, device="cpu", descriptor=FACENET)
        assert "photokit models install facenet-vggface2" in error_line(refused.value)
        with db.session() as session:
            assert active_kind(session) == DLIB
    finally:
        db.dispose()
    result = runner.invoke(app, ["models", "install", "facenet-vggface2", "--from", str(facenet_weights)])
    assert result.exit_code == 0, result.output
    status = ModelStore(settings).status("facenet-vggface2")
    assert status.installed and status.path.name == "20180402-114759-vggface2.pt"


@pytest.mark.parametrize(
    "damage, why",
    [
        ("not_torch", "not a loadable PyTorch weights file"),
        ("wrong_shape", "'last_linear.weight' has shape"),
        ("missing_key", "missing 'last_bn.running_var'"),
    ],
)
def test_install_refuses_a_wrong_file_in_one_line(tmp_path, damage, why):
    bad = tmp_path / "bad.pt"
    if damage == "not_torch":
        bad.write_bytes(b"this is not a checkpoint" * 10)
    else:
        state = random_facenet_state()
        if damage == "wrong_shape":
            state["last_linear.weight"] = torch.zeros(128, 1792)  # a 128-D head: another network
        else:
            del state["last_bn.running_var"]
        torch.save(state, bad)
    result = CliRunner().invoke(app, ["models", "install", "facenet-vggface2", "--from", str(bad)])
    assert result.exit_code == 2
    assert why in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
    assert not ModelStore(Settings.load()).status("facenet-vggface2").installed


def test_loader_refuses_weights_changed_after_install(facenet_weights):
    from photokit.faces import models

    _install(facenet_weights)
    state = random_facenet_state()
    state["repeat_1.0.conv2d.weight"] = torch.zeros(3, 3)
    torch.save(state, models.facenet_weights_path())
    with pytest.raises(MissingModelError, match="'repeat_1.0.conv2d.weight' has shape"):
        models.facenet("cpu")


# -- scanning with facenet, switching kinds -----------------------------------------------------------
def test_scan_with_facenet_writes_512d_descriptors_and_switching_back_restores_dlib(
    facenet_weights, tmp_path, settings
):
    album = _album(tmp_path)
    library = scan_faces_library(tmp_path / "home", [album])  # dlib, the default
    db = library.db
    try:
        dlib_rows = _descriptors(db)
        assert dlib_rows and {r[2] for r in dlib_rows} == {DLIB}
        _install(facenet_weights)
        summary = process_pending_photos(db, device="cpu", descriptor=FACENET)
        assert summary.descriptor == FACENET
        assert summary.redescribed.faces == len(dlib_rows) and summary.redescribed.photos == len(PHOTOS)
        rows = _descriptors(db)
        assert [r[0] for r in rows] == [r[0] for r in dlib_rows]  # the same faces, described again
        assert {r[2] for r in rows} == {FACENET}
        vectors = np.stack([np.frombuffer(r[3], "<f4") for r in rows if r[3] is not None])
        assert vectors.shape == (len(rows), 512)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        with db.session() as session:
            assert active_kind(session) == FACENET
            assert LibraryFaces.load(session, include_ignored=True).embeddings.shape[1] == 512

        # A plain run keeps the library's kind; then switching back gives dlib's descriptors again.
        assert process_pending_photos(db, device="cpu").redescribed is None
        process_pending_photos(db, device="cpu", descriptor=DLIB)
        back = _descriptors(db)
        assert {r[2] for r in back} == {DLIB}
        for before, after in zip(dlib_rows, back):
            before_vec, after_vec = np.frombuffer(before[3], "<f4"), np.frombuffer(after[3], "<f4")
            assert np.linalg.norm(before_vec - after_vec) < 0.02  # from the stored landmarks: the same face
    finally:
        db.dispose()


def test_an_interrupted_switch_resumes_where_it_stopped(facenet_weights, tmp_path, monkeypatch, settings):
    from photokit.faces.analyze import FaceAnalyzer

    album = _album(tmp_path)
    library = scan_faces_library(tmp_path / "home", [album])
    db = library.db
    try:
        _install(facenet_weights)
        described: list[int] = []
        original = FaceAnalyzer.describe

        def interrupted(self, photo, landmarks68):
            if len(described) == 1:
                raise KeyboardInterrupt  # Ctrl-C while the second face is being described
            described.append(1)
            return original(self, photo, landmarks68)

        monkeypatch.setattr(FaceAnalyzer, "describe", interrupted)
        with pytest.raises(KeyboardInterrupt):
            process_pending_photos(db, device="cpu", descriptor=FACENET)
        rows = _descriptors(db)
        done = [r for r in rows if r[2] == FACENET]
        assert len(done) == 1 and len(rows) > 1  # the first photo's face was stored, the rest waits
        with db.session() as session:
            assert active_kind(session) == FACENET
            # Meanwhile only faces of the active kind are compared: the dlib ones take no part.
            assert len(LibraryFaces.load(session, include_ignored=True).face_ids) <= len(done)

        monkeypatch.setattr(FaceAnalyzer, "describe", original)
        calls: list[int] = []
        monkeypatch.setattr(FaceAnalyzer, "describe", lambda self, p, lm: calls.append(1) or original(self, p, lm))
        summary = process_pending_photos(db, device="cpu")  # no option: the switch continues
        assert len(calls) == len(rows) - len(done)  # the face already done is not described again
        assert summary.redescribed.faces == len(rows) - len(done)
        assert {r[2] for r in _descriptors(db)} == {FACENET}
    finally:
        db.dispose()


# -- never mixing kinds -------------------------------------------------------------------------------
def _unit(rng, dim, n, spread):
    """``n`` L2-normalised vectors around one random centre."""
    centre = rng.normal(size=dim)
    centre /= np.linalg.norm(centre)
    vectors = centre + rng.normal(scale=spread / np.sqrt(dim), size=(n, dim))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _add_faces(session, vectors, kind: DescriptorKind, first_photo: int) -> list[int]:
    """One clusterable face per new photo (no cannot-links), described by ``kind``."""
    ids = []
    for k, vector in enumerate(vectors):
        photo = Photo(id=first_photo + k, sha256=f"{first_photo + k:064x}", size=1, format="jpeg", width=9, height=9)
        session.add(photo)
        face = Face(
            photo_id=photo.id,
            detector="mtcnn",
            box=[0, 0, 80, 80],
            score=0.99,
            size_px=80.0,
            embedding=embedding_to_bytes(vector.astype(np.float32)),
            descriptor_kind=str(kind),
            user_rejected=False,
        )
        session.add(face)
        session.flush()
        ids.append(face.id)
    return ids


def test_clustering_and_identify_never_mix_kinds(settings):
    rng = np.random.default_rng(3)
    db = open_database(settings)
    try:
        with db.session() as session:
            dlib_ids = _add_faces(
                session, np.concatenate([_unit(rng, 128, 6, 0.25), _unit(rng, 128, 6, 0.25)]), DLIB, 1
            )
            # facenet faces: two identities, same-person distances ~0.5-0.7, different ones ~1.4 (unit sphere)
            facenet_ids = _add_faces(
                session, np.concatenate([_unit(rng, 512, 6, 0.5), _unit(rng, 512, 6, 0.5)]), FACENET, 100
            )
            stats = cluster_faces(session)  # the library's kind: dlib
            assert stats.clustered_faces == len(dlib_ids)
            faces = {f.id: f for f in session.scalars(select(Face))}
            assert all(faces[i].person_id is not None for i in dlib_ids)
            assert all(faces[i].person_id is None for i in facenet_ids)
            dlib_people = {faces[i].person_id for i in dlib_ids}
            assert len(dlib_people) == 2
            with pytest.raises(PhotokitError, match="512 values"):
                identify(session, np.ones(512, np.float32) / np.sqrt(512))

            set_active_kind(session, FACENET)
            stats = cluster_faces(session)
            assert stats.clustered_faces == len(facenet_ids)
            session.expire_all()
            faces = {f.id: f for f in session.scalars(select(Face))}
            facenet_people = {faces[i].person_id for i in facenet_ids}
            assert None not in facenet_people and len(facenet_people) == 2
            assert not facenet_people & dlib_people  # a facenet face never joins a person built on dlib's
            assert len(session.scalars(select(Person)).all()) == 4
            probe = np.frombuffer(faces[facenet_ids[0]].embedding, "<f4")
            person, _ = identify(session, probe)
            assert person is not None and person.id == faces[facenet_ids[0]].person_id
            with pytest.raises(PhotokitError, match="128 values"):
                identify(session, np.frombuffer(faces[dlib_ids[0]].embedding, "<f4"))
    finally:
        db.dispose()


def test_facenet_distances_need_facenet_thresholds(settings):
    """L2-normalised facenet faces of one person lie ~0.5-0.7 apart: dlib's 0.6 link limit splits them,
    the facenet scale (deepface's 1.04 vs dlib's 0.6) keeps them together and the two people apart."""
    from photokit.faces.cluster import assign_faces

    rng = np.random.default_rng(5)
    vectors = np.concatenate([_unit(rng, 512, 8, 0.6), _unit(rng, 512, 8, 0.6)]).astype(np.float32)
    photos = np.arange(len(vectors))
    truth = np.repeat([0, 1], 8)
    facenet_labels = assign_faces(vectors, photos, None, cluster_config(FACENET))
    dlib_labels = assign_faces(vectors, photos, None, ClusterConfig())
    assert (facenet_labels != 0).all()
    assert len(set(facenet_labels[truth == 0]) | set(facenet_labels[truth == 1])) == 2
    assert not set(facenet_labels[truth == 0]) & set(facenet_labels[truth == 1])
    assert (dlib_labels != 0).sum() < len(vectors) // 2  # dlib's distances are far too tight here
    assert cluster_config(DLIB) == ClusterConfig()  # dlib's defaults are unchanged
    assert distance_scale(FACENET) > 1.5
