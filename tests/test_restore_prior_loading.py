"""Priors are loaded, checked and hashed once per album; the scale range and its message agree."""

from __future__ import annotations

import pytest
import torch

from photokit.errors import PhotokitError
from photokit.restore.options import EnhanceOptions
from photokit.restore.pipeline import Enhancer
from photokit.restore.priors import NoPeople, StaticPriors, StorePriors
from photokit.stylegan2.base import BaseGenerator
from photokit.stylegan2.network import build_tiny_generator


def test_a_broken_prior_is_read_once_and_fails_the_same_way_for_every_face(settings, monkeypatch):
    import photokit.prior.meta as prior_meta
    import photokit.prior.storage as storage

    folder = prior_meta.prior_dir(settings, 3)
    folder.mkdir(parents=True)
    (folder / prior_meta.PRIOR_JSON).write_text("{not json")
    calls = []
    real = storage.load_personal_prior
    monkeypatch.setattr(storage, "load_personal_prior", lambda *a, **k: calls.append(a) or real(*a, **k))
    priors = StorePriors(settings, torch.device("cpu"))
    messages = []
    for _ in range(3):
        with pytest.raises(PhotokitError) as info:
            priors.personal(3)
        messages.append(str(info.value))
    assert len(calls) == 1
    assert len(set(messages)) == 1 and "corrupt" in messages[0] and "\n" not in messages[0]


def _store_tiny_prior(settings, person_id, G, fingerprint):
    from photokit.prior.adapters import FullDelta
    from photokit.prior.meta import FORMAT, prior_dir
    from photokit.prior.storage import save_prior

    anchors = torch.randn(2, G.w_dim)
    stored = FullDelta(G.synthesis).stored_tensors(torch.float16)
    meta = {
        "format": FORMAT,
        "person_id": person_id,
        "person_name": None,
        "base": {"name": "tiny", "fingerprint": fingerprint},
        "loss": {"kind": "mse"},
        "references": [{"index": i, "face_id": i} for i in range(2)],
        "tuning": {"kind": "full"},
    }
    save_prior(prior_dir(settings, person_id), anchors, stored, meta)


def test_store_priors_hash_the_base_generator_once_for_all_people(settings, monkeypatch):
    import photokit.stylegan2.state as checkpoints
    from photokit.store.catalog import catalog_entry
    from photokit.store.models import ModelStore
    from photokit.stylegan2 import generator_fingerprint, save_generator

    G = build_tiny_generator(resolution=16, channels=8, seed=2)
    path = ModelStore(settings).target_path(catalog_entry("ffhq-256"))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_generator(G, path)
    fingerprint = generator_fingerprint(G)
    for person_id in (1, 2):
        _store_tiny_prior(settings, person_id, G, fingerprint)

    calls = []
    monkeypatch.setattr(checkpoints, "generator_fingerprint", lambda g: calls.append(1) or generator_fingerprint(g))
    priors = StorePriors(settings, torch.device("cpu"))
    assert priors.base().fingerprint == fingerprint  # loaded and hashed once
    calls.clear()
    loaded = [priors.personal(1), priors.personal(2), priors.personal(1)]
    assert all(p is not None and p.anchors.shape == (2, G.w_dim) for p in loaded)
    assert calls == []  # no person's prior hashes the base generator again
    assert priors.personal(5) is None  # no prior: no error


def test_load_personal_prior_uses_a_given_base_generators_fingerprint(settings, monkeypatch):
    import photokit.stylegan2.state as checkpoints
    from photokit.prior.storage import load_personal_prior
    from photokit.stylegan2 import generator_fingerprint

    G = build_tiny_generator(resolution=16, channels=8, seed=3)
    _store_tiny_prior(settings, 4, G, generator_fingerprint(G))
    base = BaseGenerator(G, "tiny")
    assert base.fingerprint  # computed once, here

    def no_rehash(g):
        raise AssertionError("the base generator was hashed again")

    monkeypatch.setattr(checkpoints, "generator_fingerprint", no_rehash)
    prior = load_personal_prior(settings, 4, "cpu", base_generator=base)
    assert prior.anchors.shape == (2, G.w_dim)
    wrong = BaseGenerator(G, "tiny", _fingerprint="0" * 64)
    with pytest.raises(PhotokitError, match="tuned on base generator"):
        load_personal_prior(settings, 4, "cpu", base_generator=wrong)


def test_scale_range_message_matches_the_accepted_range():
    for bad in (0.2, 17):
        with pytest.raises(PhotokitError, match="0.25 to 16"):
            Enhancer(EnhanceOptions(scale=bad), StaticPriors(), NoPeople(), device="cpu")
    for good in (0.25, 0.5, 16):
        assert Enhancer(EnhanceOptions(scale=good), StaticPriors(), NoPeople(), device="cpu").options.scale == good
