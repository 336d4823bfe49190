"""Pivotal tuning on 8 real faces, stored priors (exact reload, refusals), resume, low-rank adapters."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from photokit.errors import PhotokitError
from photokit.prior.adapters import stored_bytes
from photokit.prior.meta import ANCHORS_FILE, WEIGHT_FILES, has_prior, list_priors, prior_dir
from photokit.prior.projector import ProjectorConfig, invert_w
from photokit.prior.refs import build_reference_set, load_reference_images
from photokit.prior.selection import RefsConfig
from photokit.prior.storage import load_personal_prior, save_prior
from photokit.prior.tuning import TuningConfig, tune
from photokit.stylegan2 import generator_fingerprint
from photokit.stylegan2.losses import make_reconstruction_loss
from photokit.stylegan2.network import build_tiny_generator
from tests.conftest import shared_path

TUNING_STEPS = 400


def largest_identity_person(library) -> int:
    """The library person holding most faces of the largest labelled identity (person00)."""
    from sqlalchemy import select

    from photokit.db.models import Face, PhotoLocation

    with open(shared_path("data", "faces", "deepface", "labels.csv"), newline="") as fh:
        labels = {r["file"]: r["identity"] for r in csv.DictReader(fh)}
    largest = max(set(labels.values()), key=lambda i: sum(v == i for v in labels.values()))
    votes: dict[int, int] = {}
    with library.db.session() as session:
        for face, path in session.execute(
            select(Face, PhotoLocation.path).join(PhotoLocation, PhotoLocation.photo_id == Face.photo_id)
        ):
            if face.person_id is not None and labels.get(path.rsplit("/", 1)[-1]) == largest:
                votes[face.person_id] = votes.get(face.person_id, 0) + 1
    return max(votes, key=votes.get)


@pytest.fixture(scope="module")
def real_faces(deepface_library, tmp_path_factory):
    """8 references of the largest identity, aligned at the tiny generator's 32 px (the person also has
    faces in the group photos, so the set has more; the first 8 in reference order are used)."""
    G = build_tiny_generator()
    person_id = largest_identity_person(deepface_library)
    refs = build_reference_set(
        deepface_library.db, str(person_id), G.resolution, tmp_path_factory.mktemp("refs"), RefsConfig()
    )
    refs.faces = refs.faces[:8]
    targets = load_reference_images(refs)
    assert len(targets) == 8
    inv = invert_w(G, targets, make_reconstruction_loss("mse"), ProjectorConfig(steps=150))
    return G, refs, targets, inv.ws


@pytest.fixture(scope="module")
def tuning_loss():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the random backbone is drawn from the global RNG: keep runs reproducible
        return make_reconstruction_loss("lpips", net="alex", allow_random_backbone=True)  # tests only


@pytest.fixture(scope="module")
def full_tuning(real_faces, tuning_loss):
    G, _, targets, anchors = real_faces
    return tune(G, anchors, targets, tuning_loss, TuningConfig(steps=TUNING_STEPS), generator_fingerprint(G))


def _meta(G, refs, result, person_id=7):
    return {
        "format": "photokit-personal-prior",
        "person_id": person_id,
        "person_name": None,
        "base": {"name": "tiny", "fingerprint": generator_fingerprint(G)},
        "loss": {"kind": "test"},
        "references": [{"index": i, **f} for i, f in enumerate(refs.faces)],
        "tuning": {
            "kind": result.kind,
            "loss_before": sum(result.losses_before) / len(result.losses_before),
            "loss_after": sum(result.losses_after) / len(result.losses_after),
        },
    }


def test_tuning_halves_the_reconstruction_loss_of_real_faces(full_tuning):
    before = sum(full_tuning.losses_before) / 8
    after = sum(full_tuning.losses_after) / 8
    print(f"mean reconstruction loss (LPIPS random-alex + MSE) {before:.4f} -> {after:.4f}")
    assert after <= 0.5 * before
    assert full_tuning.kind == "full" and full_tuning.steps == TUNING_STEPS


def test_saved_prior_reloads_to_the_same_generator(real_faces, full_tuning, settings):
    G, refs, _, anchors = real_faces
    save_prior(prior_dir(settings, 7), anchors, full_tuning.stored, _meta(G, refs, full_tuning))
    assert has_prior(settings, 7) and [p["person_id"] for p in list_priors(settings)] == [7]
    prior = load_personal_prior(settings, 7, "cpu", base_generator=G)
    assert torch.equal(prior.anchors, anchors)
    ws = anchors.unsqueeze(1).repeat(1, G.num_ws, 1)
    assert torch.equal(
        prior.generator.synthesis(ws, noise_mode="const"), full_tuning.generator.synthesis(ws, noise_mode="const")
    )
    assert generator_fingerprint(G) == prior.meta["base"]["fingerprint"]  # the base was not modified


def test_corrupt_files_and_another_base_are_refused(real_faces, full_tuning, settings):
    G, refs, _, anchors = real_faces
    folder = prior_dir(settings, 7)
    save_prior(folder, anchors, full_tuning.stored, _meta(G, refs, full_tuning))

    other = build_tiny_generator(seed=1)
    with pytest.raises(PhotokitError, match="tuned on base generator") as exc:
        load_personal_prior(settings, 7, "cpu", base_generator=other)
    assert "\n" not in str(exc.value)

    weights = folder / WEIGHT_FILES["full"]
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(PhotokitError, match="corrupt") as exc:
        load_personal_prior(settings, 7, "cpu", base_generator=G)
    assert "\n" not in str(exc.value)

    save_prior(folder, anchors, full_tuning.stored, _meta(G, refs, full_tuning))
    (folder / ANCHORS_FILE).write_bytes((folder / ANCHORS_FILE).read_bytes()[:40])  # truncated
    with pytest.raises(PhotokitError, match="corrupt"):
        load_personal_prior(settings, 7, "cpu", base_generator=G)

    (folder / "prior.json").write_text("{not json")
    with pytest.raises(PhotokitError, match="corrupt"):
        load_personal_prior(settings, 7, "cpu", base_generator=G)


@pytest.fixture
def one_thread():
    """Multi-threaded CPU kernels (conv backward) sum partial results in an order that depends on thread
    timing: two uninterrupted 40-step runs on 2 threads already differ by up to 4e-6 in 11-16 stored tensors
    (measured, torch 2.14 CPU; torch.use_deterministic_algorithms does not change it). On one thread two runs
    are bit-identical, so only there can "resume gives the same bits" be tested."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_interrupted_tuning_resumes_from_its_checkpoint_to_the_same_result(
    real_faces, tuning_loss, tmp_path, one_thread
):
    G, _, targets, anchors = real_faces
    config = TuningConfig(steps=40)
    straight = tune(G, anchors, targets, tuning_loss, config)

    def interrupt(step, total, loss):
        if step == 17:
            raise KeyboardInterrupt

    ckpt = tmp_path / "tuning.ckpt"
    with pytest.raises(KeyboardInterrupt):
        tune(G, anchors, targets, tuning_loss, config, checkpoint=ckpt, on_step=interrupt)
    assert ckpt.is_file()  # Ctrl-C saved a checkpoint first
    resumed = tune(G, anchors, targets, tuning_loss, config, checkpoint=ckpt)
    assert resumed.resumed_from == 17 and resumed.steps == 40
    for key, value in straight.stored.items():
        assert torch.equal(resumed.stored[key], value), key

    def crash(step, total, loss):
        if step == 9:
            raise RuntimeError("power cut")

    crash_ckpt = tmp_path / "crash.ckpt"  # a crash is no KeyboardInterrupt: the periodic checkpoint covers it
    with pytest.raises(RuntimeError):
        tune(
            G,
            anchors,
            targets,
            tuning_loss,
            TuningConfig(steps=40, checkpoint_every_s=0.0),
            checkpoint=crash_ckpt,
            on_step=crash,
        )
    after_crash = tune(G, anchors, targets, tuning_loss, TuningConfig(steps=40), checkpoint=crash_ckpt)
    assert after_crash.resumed_from == 9
    assert all(torch.equal(after_crash.stored[k], v) for k, v in straight.stored.items())

    other = TuningConfig(steps=40, lr=1e-3)  # other settings must not silently continue that checkpoint
    with pytest.raises(PhotokitError, match="other settings"):
        tune(G, anchors, targets, tuning_loss, other, checkpoint=ckpt)


def test_low_rank_adapters_store_10x_less(real_faces, full_tuning, tuning_loss, settings):
    G, refs, targets, anchors = real_faces
    lowrank = tune(G, anchors, targets, tuning_loss, TuningConfig(steps=TUNING_STEPS, adapter_rank=1))
    full_b, low_b = stored_bytes(full_tuning.stored), stored_bytes(lowrank.stored)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    report = {
        "full": {
            "bytes": full_b,
            "loss_before": mean(full_tuning.losses_before),
            "loss_after": mean(full_tuning.losses_after),
        },
        "lowrank_r1": {
            "bytes": low_b,
            "loss_before": mean(lowrank.losses_before),
            "loss_after": mean(lowrank.losses_after),
        },
    }
    print(json.dumps(report))
    assert full_b >= 10 * low_b
    assert report["lowrank_r1"]["loss_after"] < report["lowrank_r1"]["loss_before"]
    save_prior(prior_dir(settings, 8), anchors, lowrank.stored, _meta(G, refs, lowrank, person_id=8))
    prior = load_personal_prior(settings, 8, "cpu", base_generator=G)
    ws = anchors.unsqueeze(1).repeat(1, G.num_ws, 1)
    assert torch.equal(prior.generator.synthesis(ws), lowrank.generator.synthesis(ws))
    save_prior(prior_dir(settings, 7), anchors, full_tuning.stored, _meta(G, refs, full_tuning))
    full_file = (prior_dir(settings, 7) / WEIGHT_FILES["full"]).stat().st_size
    low_file = (prior_dir(settings, 8) / WEIGHT_FILES["lowrank"]).stat().st_size
    print(f"files on disk: full delta {full_file} B, rank-1 adapters {low_file} B ({full_file / low_file:.1f}x)")
    assert full_file >= 10 * low_file
