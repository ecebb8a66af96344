"""``main.py fleet ...`` as an operator runs it: real processes, a real store on both backends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fleet.auth import Authenticator
from fleet.store import Scope, open_store
from fleet.store.db import Database
from fleet.store.migrate import current, head
from tests.conftest import ROOT


def fleet(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "fleet", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stderr.strip().splitlines()[-1]


def fresh_url(backend: str, tmp_path: Path, request: object) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'cli.sqlite'}"
    import psycopg

    cluster = request.getfixturevalue("pg_cluster")  # type: ignore[attr-defined]
    with psycopg.connect(cluster.url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("CREATE DATABASE cli_empty")
    return str(cluster.url("cli_empty"))


def test_an_operator_sets_up_a_store_and_an_account(backend: str, tmp_path: Path, request: object) -> None:
    url = fresh_url(backend, tmp_path, request)
    up = fleet("db", "upgrade", "--db", url)
    assert up.returncode == 0, up.stderr
    assert f"schema none -> {head()}" in up.stdout
    assert fleet("db", "current", "--db", url).stdout.startswith(head())
    added = fleet(
        "center",
        "add",
        "--db",
        url,
        "--id",
        "hcm-ben-thanh",
        "--province",
        "hcm",
        "--province-name",
        "TP. Hồ Chí Minh",
        "--name",
        "Trung tâm Phục vụ hành chính công phường Bến Thành",
    )
    assert added.returncode == 0 and "TP. Hồ Chí Minh" in added.stdout
    assert (
        fleet(
            "kiosk",
            "add",
            "--db",
            url,
            "--id",
            "kiosk-bt-01",
            "--center",
            "hcm-ben-thanh",
            "--slot",
            "0",
            "--label",
            "Sảnh tầng 1",
        ).returncode
        == 0
    )
    user = fleet(
        "user",
        "add",
        "--db",
        url,
        "--username",
        "quanly.bt",
        "--role",
        "center_manager",
        "--center",
        "hcm-ben-thanh",
        "--display-name",
        "Trần Thị Bích Ngọc",
        "--password-stdin",
        stdin="Mật khẩu của quản lý\n",
    )
    assert user.returncode == 0, user.stderr
    again = fleet(
        "user",
        "add",
        "--db",
        url,
        "--username",
        "quanly.bt",
        "--role",
        "viewer",
        "--center",
        "hcm-ben-thanh",
        "--password-stdin",
        stdin="Mật khẩu khác 12345\n",
    )
    assert again.returncode == 65 and last_line(again) == "error: user 'quanly.bt' exists already"
    wrong_home = fleet(
        "user",
        "add",
        "--db",
        url,
        "--username",
        "kythuat",
        "--role",
        "technician",
        "--province",
        "hcm",
        "--password-stdin",
        stdin="Mật khẩu của kỹ thuật\n",
    )
    assert wrong_home.returncode == 65 and "give --center" in wrong_home.stderr
    store = open_store(url)
    try:
        logged = Authenticator(store).login("quanly.bt", "Mật khẩu của quản lý", "cli-test")
        assert logged.session.user.display_name == "Trần Thị Bích Ngọc"
        assert store.registry.kiosk(Scope.everything(), "kiosk-bt-01").label == "Sảnh tầng 1"
        assert store.audit.page(Scope.everything(), action="user.create").total == 1
    finally:
        store.close()
    # a province of bridged centers: each center's fleet pushes its own configuration
    assert fleet("config-owner", "--db", url).stdout.strip() == "config owner: here"
    assert fleet("config-owner", "--db", url, "centers").stdout.strip() == "config owner: centers"
    assert fleet("config-owner", "--db", url, "nobody").returncode != 0
    # ...and one center without a fleet of its own, whose kiosks the province's fleet configures
    own = fleet("config-owner", "--db", url, "here", "--center", "hcm-ben-thanh")
    assert own.stdout.strip() == "config owner of hcm-ben-thanh: here"
    listed = fleet("config-owner", "--db", url).stdout.strip().splitlines()
    assert listed == ["config owner: centers", "config owner of hcm-ben-thanh: here"]
    unknown = fleet("config-owner", "--db", url, "here", "--center", "no-such-center")
    assert unknown.returncode != 0 and "no-such-center" in unknown.stderr
    assert fleet("config-owner", "--db", url, "default").returncode == 64  # the store's rule is not 'default'
    owner_store = open_store(url)
    try:
        configs = owner_store.configs
        assert configs.owner() == "centers" and configs.owner("hcm-ben-thanh") == "here"
    finally:
        owner_store.close()
    report = fleet("maintain", "--db", url)
    assert report.returncode == 0
    assert set(json.loads(report.stdout)) == {
        "partitions_ensured", "health_partitions_ensured", "health_hours", "deleted", "deferred"
    }


def test_the_password_never_comes_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert fleet("db", "upgrade", "--db", url).returncode == 0
    on_argv = fleet(
        "user",
        "add",
        "--db",
        url,
        "--username",
        "a.b.c",
        "--role",
        "viewer",
        "--province",
        "hcm",
        "--password",
        "secret-on-argv",
    )
    assert on_argv.returncode == 2 and "unrecognized arguments" in on_argv.stderr
    no_tty = fleet(
        "user", "add", "--db", url, "--username", "a.b.c", "--role", "viewer", "--province", "hcm", stdin=""
    )
    assert no_tty.returncode == 78 and "use --password-stdin" in no_tty.stderr
    short = fleet(
        "user",
        "add",
        "--db",
        url,
        "--username",
        "a.b.c",
        "--role",
        "viewer",
        "--province",
        "hcm",
        "--password-stdin",
        stdin="short\n",
    )
    assert short.returncode == 65 and "at least 10 characters" in short.stderr


def test_errors_are_one_line_with_an_exit_code(tmp_path: Path) -> None:
    not_migrated = fleet(
        "center",
        "add",
        "--db",
        f"sqlite:///{tmp_path / 'x.sqlite'}",
        "--id",
        "c1",
        "--name",
        "C",
        "--province",
        "p1",
    )
    assert not_migrated.returncode == 74 and "run 'main.py fleet db upgrade" in not_migrated.stderr
    assert "Traceback" not in not_migrated.stderr
    bad_url = fleet("db", "upgrade", "--db", "mysql://h/db")
    assert bad_url.returncode == 78 and bad_url.stderr.startswith("error: --db:")
    # the allocator's commands keep working, with the fleet's own errors now
    broker = fleet("allocator", "--center", "c1", "--db", str(tmp_path / "a.sqlite"), "--broker", "nope")
    assert broker.returncode == 78 and last_line(broker) == "error: --broker: expected HOST:PORT, got 'nope'"
    book = fleet("tickets", "--db", str(tmp_path / "none.sqlite"))
    assert book.returncode == 78 and "does not exist" in book.stderr
    zone = fleet("serve", "--db", f"sqlite:///{tmp_path / 's.sqlite'}", "--timezone", "Mars/Olympus")
    assert zone.returncode == 78 and "unknown time zone" in zone.stderr
    listen = fleet("serve", "--db", f"sqlite:///{tmp_path / 's.sqlite'}", "--listen", "nowhere")
    assert listen.returncode == 78 and "--listen" in listen.stderr
    db = Database(f"sqlite:///{tmp_path / 's.sqlite'}")
    assert current(db) is None  # refused before touching the store
    db.close()


def test_each_worker_finds_its_certificate_by_the_province_or_the_center_naming() -> None:
    """``--cert`` of ``fleet ingest --workers N``: ``{n}`` for the province's fleet-1 .. fleet-N
    (provision province-init), ``{.n}`` for a center's fleet, fleet.2 .. (center-init, service-cert)."""
    from fleet.cli import worker_path

    province = Path("pki/fleet-{n}.crt")
    center = Path("/etc/motcua/certs/fleet{.n}.key")
    assert [worker_path(province, i) for i in range(3)] == [
        Path("pki/fleet-1.crt"), Path("pki/fleet-2.crt"), Path("pki/fleet-3.crt")
    ]
    assert [worker_path(center, i) for i in range(3)] == [
        Path("/etc/motcua/certs/fleet.key"), Path("/etc/motcua/certs/fleet.2.key"),
        Path("/etc/motcua/certs/fleet.3.key"),
    ]
    assert worker_path(Path("pki/fleet.crt"), 1) == Path("pki/fleet.crt")  # one certificate for all


def test_several_workers_with_one_certificate_are_refused_in_one_line(tmp_path: Path) -> None:
    done = fleet(
        "ingest", "--db", f"sqlite:///{tmp_path / 'f.sqlite'}", "--broker", "127.0.0.1:1",
        "--ca", str(tmp_path / "ca.crt"), "--cert", str(tmp_path / "fleet.crt"),
        "--key", str(tmp_path / "fleet.key"), "--workers", "2",
    )
    assert done.returncode != 0
    assert "{n}" in last_line(done) and "{.n}" in last_line(done)
