"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` + ``pg_ctl`` in a temp folder.

The server listens on 127.0.0.1 on a free port and on a unix socket inside its folder, trusts local
connections (nothing else can reach it) and runs without fsync: its data dies with it. As root it runs
as the unprivileged ``postgres`` user (``initdb`` refuses root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL server's ``bin`` folder (Debian layout first, then PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """``start()`` once, ``create_database()`` as often as needed, ``stop()`` at the end."""

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise FileNotFoundError("no PostgreSQL server binaries (initdb) found; install Debian's postgresql")
        self.bindir = found
        self.root = Path(tempfile.mkdtemp(prefix="photokit-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._run_as: list[str] = []
        self._counter = 0

    def _cmd(self, *args: str) -> None:
        subprocess.run([*self._run_as, *args], check=True, capture_output=True, text=True)

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres", group="postgres")
            self._run_as = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.root, 0o700)
        self._cmd(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=300 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=64MB"
        )
        try:
            self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                      "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")  # fmt: skip
        except subprocess.CalledProcessError as exc:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr or exc.stdout}\n{log}") from exc
        return self

    def stop(self) -> None:
        if self.data.is_dir():
            subprocess.run(
                [*self._run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None, template: str = "template0") -> str:
        """A new database, empty or a copy of ``template`` (which nobody may be connected to); returns its URL."""
        import psycopg

        if name is None:
            self._counter += 1
            name = f"photokit_{os.getpid()}_{self._counter}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        return self.url(name)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


_SHARED: list[PostgresServer] = []


def shared_server() -> PostgresServer:
    """One server per process, started on first use. It lives here, not in conftest, because pytest's
    ``conftest`` and an imported ``tests.conftest`` are two module objects that would each start one."""
    if not _SHARED:
        _SHARED.append(PostgresServer().start())
    return _SHARED[0]


def stop_shared_server() -> None:
    while _SHARED:
        _SHARED.pop().stop()
