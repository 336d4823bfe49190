"""Model store: installs from a local HTTP server (resume, size and checksum checks), files, CLI."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.errors import MissingModelError, PhotokitError
from photokit.store.catalog import CATALOG, GENERATOR, LPIPS, CatalogEntry
from photokit.store.download import DownloadInterrupted
from photokit.store.models import ModelStore
from photokit.stylegan2 import GENERATOR_FILES, generator_fingerprint, load_generator, save_generator
from photokit.stylegan2.losses import lpips_available, lpips_backbone_path
from photokit.stylegan2.network import Generator, GeneratorConfig
from tests.conftest import shared_path


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # clients hanging up early is part of these tests
        pass


class FileServer:
    """127.0.0.1 HTTP server for a few in-memory files; honours Range; can drop a connection mid-file."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}  # path -> bytes sent before the connection is dropped (once)
        self.requests: list[tuple[str, str | None]] = []
        self.honour_range = True
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                rng = self.headers.get("Range") if server.honour_range else None
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                cut = server.cut_after.pop(self.path, None)
                self.wfile.write(body if cut is None else body[:cut])
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server():
    s = FileServer()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture(scope="module")
def generator_256_bytes(tmp_path_factory) -> bytes:
    """A small random 256 px generator (8 channels) in photokit's format: the shape of an 'ffhq-256' file."""
    torch.manual_seed(0)
    G = Generator(
        GeneratorConfig(z_dim=32, w_dim=32, resolution=256, mapping_layers=2, channels={2**i: 8 for i in range(2, 9)})
    ).eval()
    path = save_generator(G, tmp_path_factory.mktemp("g") / "g256.safetensors")
    return path.read_bytes()


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _fixture_catalog(sha256: str | None = None, size: int | None = None) -> tuple[CatalogEntry, ...]:
    """The real catalog plus a 64 px generator entry matching the shared fixtures."""
    test_entry = CatalogEntry(
        name="tiny-64",
        kind=GENERATOR,
        filename="tiny-64.safetensors",
        title="test generator",
        unlocks="tests",
        get_it="tests",
        sha256=sha256,
        size=size,
        resolution=64,
    )
    return CATALOG + (test_entry,)


def test_install_from_url_with_known_checksum(settings, server):
    data = shared_path("fixtures", "stylegan2", "rosinality_tiny64.pt").read_bytes()
    server.files["/g.pt"] = data
    store = ModelStore(
        settings, _fixture_catalog(hashlib.sha256(data).hexdigest(), len(data)), generator_files=GENERATOR_FILES
    )
    status = store.install("tiny-64", url=server.url("/g.pt"))
    assert status.installed and status.path.is_file()
    assert status.record["source_sha256"] == hashlib.sha256(data).hexdigest()
    G = load_generator(status.path)
    assert G.config.source == "rosinality" and G.resolution == 64
    assert generator_fingerprint(G) == status.record["fingerprint"]
    assert store.default_generator_path() == status.path
    assert [r["ok"] for r in store.verify(["tiny-64"])] == [True]
    assert _files_under(settings.models_dir / ".downloads") == []  # the download was cleaned up


def test_interrupted_download_resumes(settings, server):
    data = shared_path("fixtures", "stylegan2", "nvlabs_tiny64.pt").read_bytes()
    server.files["/g.pt"] = data
    server.cut_after["/g.pt"] = 3_000_000
    store = ModelStore(settings, _fixture_catalog(hashlib.sha256(data).hexdigest()), generator_files=GENERATOR_FILES)
    with pytest.raises(DownloadInterrupted, match="resume"):
        store.install("tiny-64", url=server.url("/g.pt"))
    assert store.installed_path("tiny-64") is None  # nothing half-written in place
    partial = _files_under(settings.models_dir / ".downloads")
    assert len(partial) == 1 and partial[0].stat().st_size == 3_000_000

    status = store.install("tiny-64", url=server.url("/g.pt"))
    assert server.requests[-1] == ("/g.pt", "bytes=3000000-")  # only the rest was asked for
    assert status.installed and status.record["source_sha256"] == hashlib.sha256(data).hexdigest()
    assert load_generator(status.path).config.source == "nvlabs"
    assert _files_under(settings.models_dir / ".downloads") == []


@pytest.mark.parametrize("problem", ["checksum", "size"])
def test_wrong_download_is_rejected_and_leaves_nothing(settings, server, problem):
    data = shared_path("fixtures", "stylegan2", "rosinality_tiny64.pt").read_bytes()
    server.files["/g.pt"] = data
    catalog = _fixture_catalog(sha256="0" * 64) if problem == "checksum" else _fixture_catalog(size=len(data) + 1)
    store = ModelStore(settings, catalog, generator_files=GENERATOR_FILES)
    with pytest.raises(PhotokitError) as info:
        store.install("tiny-64", url=server.url("/g.pt"))
    assert ("SHA-256" if problem == "checksum" else "bytes") in str(info.value)
    assert _files_under(settings.models_dir) == []
    assert not store.list()[-1].installed


def test_lpips_backbone_goes_where_torchvision_looks(settings, server, tmp_path):
    state = {"features.0.weight": torch.randn(4, 3, 3, 3), "classifier.6.weight": torch.randn(2, 4)}
    torch.save(state, tmp_path / "alex.pth")
    data = (tmp_path / "alex.pth").read_bytes()
    real = next(e for e in CATALOG if e.name == "lpips-alex")
    # Same entry, but with the checksum prefix of this stand-in file (the real one is 7be5be79).
    entry = replace(real, sha256_prefix=hashlib.sha256(data).hexdigest()[:8])
    store = ModelStore(
        settings, tuple(e if e.name != "lpips-alex" else entry for e in CATALOG), generator_files=GENERATOR_FILES
    )
    server.files["/alexnet.pth"] = data
    assert not lpips_available("alex")
    status = store.install("lpips-alex", url=server.url("/alexnet.pth"))
    assert status.path == lpips_backbone_path("alex") and lpips_available("alex")
    assert status.sha256 == hashlib.sha256(data).hexdigest()
    store.remove("lpips-alex")
    assert not lpips_available("alex")


def test_real_catalog_rejects_wrong_lpips_file(settings, server, tmp_path):
    """torchvision's file name carries the SHA-256 prefix: a different file is refused."""
    torch.save({"features.0.weight": torch.zeros(1), "classifier.6.weight": torch.zeros(1)}, tmp_path / "fake.pth")
    server.files["/alexnet-owt-7be5be79.pth"] = (tmp_path / "fake.pth").read_bytes()
    result = CliRunner().invoke(
        app, ["models", "install", "lpips-alex", "--url", server.url("/alexnet-owt-7be5be79.pth")]
    )
    assert result.exit_code == 2 and "7be5be79" in result.output
    assert not lpips_available("alex")
    assert _files_under(settings.models_dir) == []


def test_cli_install_list_verify_remove(settings, server, generator_256_bytes):
    server.files["/ffhq256.safetensors"] = generator_256_bytes
    runner = CliRunner()
    result = runner.invoke(
        app, ["models", "install", "ffhq-256", "--url", server.url("/ffhq256.safetensors"), "--json"]
    )
    assert result.exit_code == 0, result.output
    installed = json.loads(result.stdout)
    assert installed["installed"] and installed["num_ws"] == 14 and installed["resolution"] == 256

    listing = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    by_name = {m["name"]: m for m in listing["models"]}
    assert by_name["ffhq-256"]["installed"] and not by_name["ffhq-1024"]["installed"]
    assert by_name["ffhq-256"]["sha256"] == hashlib.sha256(Path(by_name["ffhq-256"]["path"]).read_bytes()).hexdigest()
    assert by_name["ffhq-256"]["source_sha256"] == hashlib.sha256(generator_256_bytes).hexdigest()
    assert by_name["ffhq-256"]["installed_from"] == server.url("/ffhq256.safetensors")
    assert by_name["lpips-alex"]["unlocks"] and by_name["lpips-alex"]["bytes"] is None
    assert listing["default_generator"] == by_name["ffhq-256"]["path"]
    assert ModelStore(settings).default_generator_path() == Path(by_name["ffhq-256"]["path"])

    verify = runner.invoke(app, ["models", "verify", "--json"])
    assert verify.exit_code == 0 and json.loads(verify.stdout)["ok"]
    # Damage the installed file: verify notices and fails.
    path = Path(by_name["ffhq-256"]["path"])
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    verify = runner.invoke(app, ["models", "verify", "--json"])
    assert verify.exit_code == 1
    assert (
        "changed since it was installed"
        in next(m for m in json.loads(verify.stdout)["models"] if m["name"] == "ffhq-256")["problem"]
    )

    assert runner.invoke(app, ["models", "remove", "ffhq-256"]).exit_code == 0
    assert not path.exists() and ModelStore(settings).default_generator_path() is None
    again = runner.invoke(app, ["models", "remove", "ffhq-256"])
    assert again.exit_code == 2 and "not installed" in again.output


def test_install_from_file_checks_resolution(settings, tmp_path):
    runner = CliRunner()
    src = shared_path("fixtures", "stylegan2", "nvlabs_tiny64.pt")
    result = runner.invoke(app, ["models", "install", "ffhq-256", "--from", str(src)])
    assert result.exit_code == 2 and "64 px" in result.output and "256 px" in result.output
    assert _files_under(settings.models_dir) == []
    missing = runner.invoke(app, ["models", "install", "ffhq-256", "--from", str(tmp_path / "nope.pkl")])
    assert missing.exit_code == 2 and "not found" in missing.output
    unknown = runner.invoke(app, ["models", "install", "stylegan9", "--from", str(src)])
    assert unknown.exit_code == 2 and "unknown model" in unknown.output


def test_http_errors_are_one_line(settings, server):
    result = CliRunner().invoke(app, ["models", "install", "ffhq-256", "--url", server.url("/missing.pkl")])
    assert result.exit_code == 2 and "HTTP 404" in result.output and len(result.output.strip().splitlines()) == 1


def test_require_generator_explains_what_to_install(settings):
    from photokit.cli.hints import error_line

    with pytest.raises(MissingModelError, match="no StyleGAN2 face generator") as raised:
        ModelStore(settings).require_generator()
    assert "photokit models install ffhq-256" in error_line(raised.value)


def test_list_counts_for_status(settings):
    statuses = ModelStore(settings).list()
    assert {s.name for s in statuses} >= {"ffhq-1024", "ffhq-256", "lpips-alex", "lpips-vgg"}
    assert all(not s.installed for s in statuses)
    assert {e.kind for e in CATALOG} >= {GENERATOR, LPIPS}


def test_default_generator_prefers_1024(settings):
    """With both FFHQ generators installed, priors and restoration get the 1024 px one (MyStyle's base)."""
    catalog = tuple(replace(e, resolution=64) if e.kind == GENERATOR else e for e in CATALOG)
    store = ModelStore(settings, catalog, generator_files=GENERATOR_FILES)
    src = shared_path("fixtures", "stylegan2", "nvlabs_tiny64.pt")
    assert store.default_generator_path() is None
    small = store.install("ffhq-256", from_file=src)
    assert store.default_generator_path() == small.path
    large = store.install("ffhq-1024", from_file=src)
    assert store.default_generator_path() == large.path != small.path
    assert large.record["source"] == str(src.resolve())


def test_server_without_range_support_restarts_cleanly(settings, server):
    """A server that ignores Range answers 200 with the whole file: photokit starts over, never appends."""
    from photokit.store.download import download

    data = bytes(range(256)) * 4000
    server.files["/blob"] = data
    server.cut_after["/blob"] = 100_000
    partial = settings.models_dir / ".downloads" / "blob.part"
    with pytest.raises(DownloadInterrupted):
        download(server.url("/blob"), partial)
    assert partial.stat().st_size == 100_000
    server.honour_range = False
    assert download(server.url("/blob"), partial).read_bytes() == data
    server.honour_range = True
    assert download(server.url("/blob"), partial).read_bytes() == data  # already complete: 416
    assert server.requests[-1] == ("/blob", f"bytes={len(data)}-")


def test_listing_a_replaced_file_keeps_its_install_record_so_verify_still_fails(settings, tmp_path):
    """`models list` must not re-baseline: a file changed since install stays 'changed' for list and verify."""
    catalog = _fixture_catalog()
    store = ModelStore(settings, catalog, generator_files=GENERATOR_FILES)
    status = store.install("tiny-64", from_file=shared_path("fixtures", "stylegan2", "nvlabs_tiny64.pt"))
    recorded = status.record["sha256"]
    assert not status.changed and status.sha256 == recorded

    data = bytearray(status.path.read_bytes())
    data[-5] ^= 0xFF  # replaced / damaged behind photokit's back
    status.path.write_bytes(bytes(data))
    for _ in range(2):  # listing twice: the second must not trust a record the first rewrote
        listed = ModelStore(settings, catalog).status("tiny-64")
        assert listed.changed and listed.to_json()["changed"] is True
        assert listed.sha256 == hashlib.sha256(bytes(data)).hexdigest() != recorded
        assert listed.record["sha256"] == recorded
    assert ModelStore(settings, catalog).status("tiny-64", hash_files=False).changed
    [result] = store.verify(["tiny-64"])
    assert result["ok"] is False and "changed since it was installed" in result["problem"]


def test_a_touched_but_identical_file_is_not_changed(settings):
    import os

    catalog = _fixture_catalog()
    store = ModelStore(settings, catalog, generator_files=GENERATOR_FILES)
    status = store.install("tiny-64", from_file=shared_path("fixtures", "stylegan2", "rosinality_tiny64.pt"))
    stat = status.path.stat()
    os.utime(status.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    listed = store.status("tiny-64")
    assert not listed.changed and listed.sha256 == status.record["sha256"]
    assert listed.record["mtime_ns"] == stat.st_mtime_ns + 10**9  # remembered: no re-hash next time
    assert [r["ok"] for r in store.verify(["tiny-64"])] == [True]


def test_a_file_found_in_place_is_hashed_once_and_recorded(settings):
    catalog = _fixture_catalog()
    store = ModelStore(settings, catalog)
    path = store.target_path(store.entry("lpips-alex"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    status = store.status("lpips-alex")
    assert not status.changed and status.sha256 == hashlib.sha256(b"weights").hexdigest()
    assert status.record["source"] == "found in place"
