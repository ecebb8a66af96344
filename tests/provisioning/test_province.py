"""``provision province-init`` and ``provision bridge-cert`` as a technician runs them (the real CLI
parser, in this process): the province's CA and what it signs, verified with ``cryptography``; the key
files' modes; the bridge's two files with nothing left to replace; the refusals. A real bridge runs on
these certificates in tests/fleet/test_province_bridge.py."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from main import main
from provisioning.center_pki import CenterPki
from tests.provisioning.center import PASSPHRASE
from tests.systemd_units import ROOT, verify_units

PROVINCE = "hcm"
CENTER = "hcm-ben-thanh"


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def usage(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def signed_by_the_province(cert: x509.Certificate, pki: CenterPki) -> None:
    """The chain a broker checks: the leaf by the issuing CA, the issuing CA by the root (raises if not)."""
    cert.verify_directly_issued_by(pki.issuing_cert())
    pki.issuing_cert().verify_directly_issued_by(pki.root_cert())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def provision(*argv: str) -> int:
    return main(["provision", *argv])


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("province")
    secret = root / "passphrase"
    secret.write_bytes(PASSPHRASE + b"\n")
    directory = root / "pv"
    code = provision(
        "province-init", "--dir", str(directory), "--province", PROVINCE, "--name", "TP. Hồ Chí Minh",
        "--broker-host", "mqtt.province.example", "--broker-host", "10.20.0.5", "--workers", "3",
        "--passphrase-file", str(secret),
    )
    assert code == 0
    return directory


def test_province_init_makes_a_ca_and_the_broker_and_workers_certificates(
    province: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = CenterPki(province / "pki")
    # the root key is encrypted with the passphrase (carried away like a center's)
    assert b"ENCRYPTED PRIVATE KEY" in pki.root_key_file.read_bytes()
    assert pki.root_key(PASSPHRASE).public_key() == pki.root_cert().public_key()
    assert "province hcm" in cn(pki.root_cert())
    broker = load(pki.cert_file("broker"))
    signed_by_the_province(broker, pki)
    assert usage(broker) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mqtt.province.example", "localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.20.0.5", "127.0.0.1"]
    # one client certificate per worker, named as fleet ingest --cert pki/fleet-{n}.crt numbers them
    for name in ("fleet-1", "fleet-2", "fleet-3"):
        cert = load(pki.cert_file(name))
        signed_by_the_province(cert, pki)
        assert cn(cert) == name and usage(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        key = serialization.load_pem_private_key(pki.key_file(name).read_bytes(), password=None)
        assert key.public_key() == cert.public_key()
    assert not pki.cert_file("fleet-4").exists()
    keys = sorted(p.name for p in pki.directory.glob("*.key"))
    workers = ["fleet-1.key", "fleet-2.key", "fleet-3.key"]
    assert keys == ["broker.key", *workers, "issuing-ca.key", "root-ca.key"]
    for key_file in pki.directory.glob("*.key"):  # the broker's: readable by the broker's group too
        wanted = {0o600, 0o640} if key_file.name == "broker.key" else {0o600}
        assert key_file.stat().st_mode & 0o777 in wanted, key_file
    # again with the same settings: nothing made, no passphrase needed; other settings refused
    before = {p.name: p.read_bytes() for p in pki.directory.iterdir() if p.is_file()}
    capsys.readouterr()
    again = [
        "province-init", "--dir", str(province), "--province", PROVINCE, "--name", "TP. Hồ Chí Minh",
        "--broker-host", "mqtt.province.example", "--broker-host", "10.20.0.5", "--workers", "3", "--json",
    ]
    assert provision(*again) == 0
    assert json.loads(capsys.readouterr().out)["made"] == []
    assert {p.name: p.read_bytes() for p in pki.directory.iterdir() if p.is_file()} == before
    assert provision(*again[:-2], "4", "--json") == 65
    assert "workers" in json.loads(capsys.readouterr().out)["error"]


def test_bridge_cert_writes_the_certificate_and_the_two_files_to_copy(
    province: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "to-ben-thanh"
    argv = ["bridge-cert", "--dir", str(province), "--center", CENTER, "--out", str(out), "--json"]
    assert provision(*argv) == 0
    result = json.loads(capsys.readouterr().out)
    pki = CenterPki(province / "pki")
    cert = load(out / "bridge.crt")
    signed_by_the_province(cert, pki)
    assert cn(cert) == f"bridge-{CENTER}" and usage(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert result["serial"] == f"{cert.serial_number:x}"
    key = serialization.load_pem_private_key((out / "bridge.key").read_bytes(), password=None)
    assert key.public_key() == cert.public_key()
    assert (out / "bridge.key").stat().st_mode & 0o777 == 0o600
    assert (out / "province-ca.crt").read_bytes() == pki.chain_file.read_bytes()
    # the province keeps the certificate (its record), never the bridge's key
    assert (province / "bridges" / f"bridge-{CENTER}.crt").read_bytes() == (out / "bridge.crt").read_bytes()
    assert not list(province.rglob("bridge*.key"))
    # the bridge section: every placeholder filled in, the province's first broker host and its port
    section = (out / "center-bridge.conf").read_text()
    assert "CENTER_ID" not in section and "PROVINCE_HOST" not in section
    settings = dict(line.split(" ", 1) for line in section.splitlines() if line and not line.startswith("#"))
    assert settings["address"] == "mqtt.province.example:8884"
    assert settings["remote_clientid"] == f"bridge-{CENTER}"
    assert settings["bridge_cafile"] == "/etc/mosquitto/certs/province-ca.crt"  # the default --certs-dir
    assert settings["bridge_certfile"] == "/etc/mosquitto/certs/bridge.crt"
    assert settings["bridge_keyfile"] == "/etc/mosquitto/certs/bridge.key"
    assert [line for line in section.splitlines() if line.startswith("topic ")] == [
        f"topic motcua/v1/{CENTER}/# out 1",
        f"topic motcua/v1/{CENTER}/+/cmd/req in 1",
    ]
    # the province broker's ACL block for that center
    acl = (out / f"bridge-{CENTER}.acl").read_text()
    assert [line for line in acl.splitlines() if not line.startswith("#")] == [
        f"user bridge-{CENTER}",
        f"topic write motcua/v1/{CENTER}/#",
        f"topic read motcua/v1/{CENTER}/+/cmd/req",
    ]
    assert "CENTER_ID" not in acl
    # a second certificate for the same center is refused (another --out too), unless --force
    elsewhere = tmp_path / "again"
    assert provision("bridge-cert", "--dir", str(province), "--center", CENTER, "--out", str(elsewhere)) == 65
    assert "has a bridge certificate already" in capsys.readouterr().err
    assert not elsewhere.exists()
    forced = [
        "bridge-cert", "--dir", str(province), "--center", CENTER, "--out", str(out), "--force",
        "--address", "10.20.0.5:18884", "--certs-dir", "/var/lib/motcua-center/bridge",
    ]
    assert provision(*forced) == 0
    renewed = load(out / "bridge.crt")
    assert renewed.serial_number != cert.serial_number
    section = (out / "center-bridge.conf").read_text()
    assert "address 10.20.0.5:18884" in section
    assert "bridge_keyfile /var/lib/motcua-center/bridge/bridge.key" in section


@pytest.mark.parametrize(
    ("center", "why"),
    [
        ("Ben_Thanh", "is not a center id"),
        ("-ben-thanh", "is not a center id"),
        ("fleet", "reserved"),
        ("a" * 58, "at most 64 characters"),
    ],
)
def test_bridge_cert_refuses_what_is_not_a_center_id(
    province: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], center: str, why: str
) -> None:
    out = tmp_path / "out"
    assert provision("bridge-cert", "--dir", str(province), f"--center={center}", "--out", str(out)) == 65
    assert why in capsys.readouterr().err
    assert not out.exists()
    assert not (province / "bridges" / f"bridge-{center}.crt").exists()


def test_the_commands_refuse_a_folder_that_is_not_a_province_and_bad_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    assert provision("bridge-cert", "--dir", str(tmp_path), "--center", CENTER, "--out", str(out)) == 78
    assert "is not a province folder" in capsys.readouterr().err
    secret = tmp_path / "passphrase"
    secret.write_bytes(PASSPHRASE)
    for option, value in (("--province", "HCM!"), ("--province", "fleet"), ("--broker-host", "a b")):
        argv = ["province-init", "--dir", str(tmp_path / "pv"), "--province", "hcm", "--passphrase-file",
                str(secret), option, value]
        assert provision(*argv) != 0
        assert "ERROR" in capsys.readouterr().err
        assert not (tmp_path / "pv" / "pki").exists()


def test_bridge_revoke_and_force_put_the_serials_on_the_provinces_crl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bridge-revoke`` lists the bridge's serial on the CRL (crl.pem and a new crl.d file, the same
    CRL), moves its record aside so a new ``bridge-cert`` needs no --force; ``bridge-cert --force`` lists
    the certificate it replaces (superseded); ``province-crl`` signs the same serials again when due."""
    import datetime as dt

    from provisioning.center_pki import CRL_DAYS

    secret = tmp_path / "passphrase"
    secret.write_bytes(PASSPHRASE)
    directory = tmp_path / "pv"
    assert provision("province-init", "--dir", str(directory), "--province", PROVINCE,
                     "--passphrase-file", str(secret)) == 0
    pki = CenterPki(directory / "pki")
    # the province broker's configuration wires the CRL on the services listener the bridges use
    conf = (directory / "broker" / "mosquitto.conf").read_text()
    services = conf[conf.index("listener 8884"):]
    assert f"crlfile {pki.crl_file}\n" in services and f"capath {pki.crl_dir}\n" in services
    assert "pattern " not in (directory / "broker" / "motcua.acl").read_text()

    def issue(center: str, *extra: str) -> str:
        out = tmp_path / f"to-{center}-{len(list(tmp_path.glob('to-*')))}"
        assert provision("bridge-cert", "--dir", str(directory), "--center", center, "--out", str(out),
                         "--json", *extra) == 0
        return str(json.loads(capsys.readouterr().out)["serial"])

    def acl_users() -> list[str]:
        text = (directory / "broker" / "motcua.acl").read_text()
        return [line.split()[1] for line in text.splitlines() if line.startswith("user bridge-")]

    first, other = issue(CENTER), issue("hcm-thu-duc")
    assert acl_users() == ["bridge-hcm-ben-thanh", "bridge-hcm-thu-duc"]  # the ACL follows the bridges
    assert pki.revoked_serials() == set()
    files = sorted(pki.crl_dir.iterdir())
    assert provision("bridge-revoke", "--dir", str(directory), "--center", CENTER, "--json") == 0
    revoked = json.loads(capsys.readouterr().out)
    assert revoked["serial"] == first and revoked["new"] is True
    # no broker running (no pid file): no connection to cut, said so (a running one: the bridge tests)
    assert revoked["reloaded"] is False and revoked["taken_over"] is False
    assert revoked["note"].startswith("broker not running")
    assert pki.revoked_serials() == {first}
    newest = sorted(set(pki.crl_dir.iterdir()) - set(files))
    assert len(newest) == 1 and newest[0].read_bytes() == pki.crl_file.read_bytes()
    crl = x509.load_pem_x509_crl(pki.crl_file.read_bytes())
    assert crl.is_signature_valid(pki.issuing_key().public_key())
    entry = crl.get_revoked_certificate_by_serial_number(int(first, 16))
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise
    assert acl_users() == ["bridge-hcm-thu-duc"]  # a reload takes the revoked bridge's rights at once
    assert "pattern " not in (directory / "broker" / "motcua.acl").read_text()
    bridges = directory / "bridges"
    assert not (bridges / f"bridge-{CENTER}.crt").exists()
    assert (bridges / "revoked" / f"bridge-{CENTER}.{first}.crt").exists()
    # revoked again: nothing new on the CRL, only the cut again (a run whose cut failed is run again)
    crl_before = pki.crl_file.read_bytes()
    assert provision("bridge-revoke", "--dir", str(directory), "--center", CENTER, "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["serial"] == first and again["new"] is False
    assert pki.crl_file.read_bytes() == crl_before
    assert len(json.loads((bridges / "revoked.json").read_text())) == 1
    # a center that never had a bridge certificate: nothing to revoke (exit 66)
    assert provision("bridge-revoke", "--dir", str(directory), "--center", "hcm-quan-7") == 66
    assert "has no bridge certificate" in capsys.readouterr().err
    assert provision("bridge-revoke", "--dir", str(directory), "--center", "hcm-thu-duc", "--broker",
                     "no-port") != 0
    assert "expected HOST:PORT" in capsys.readouterr().err
    assert acl_users() == ["bridge-hcm-thu-duc"]  # a bad --broker revokes nothing
    # a new certificate for the revoked center needs no --force; --force on another revokes its old one
    second = issue(CENTER)
    replacement = issue("hcm-thu-duc", "--force")  # the replaced one valid 24 h more (the grace)
    assert acl_users() == ["bridge-hcm-ben-thanh", "bridge-hcm-thu-duc"]
    assert replacement != other
    assert pki.revoked_serials() == {first}
    # the refresh: not due now (the CRL is fresh, the grace not over)
    before = pki.crl_next_update()
    assert provision("province-crl", "--dir", str(directory), "--json") == 0
    assert json.loads(capsys.readouterr().out)["published"] is False
    assert pki.crl_next_update() == before
    from provisioning.province import refresh_crl

    assert refresh_crl(directory, now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)) is True
    assert pki.revoked_serials() == {first, other}  # the grace is over: the daily run lists it
    crl = x509.load_pem_x509_crl(pki.crl_file.read_bytes())
    superseded = crl.get_revoked_certificate_by_serial_number(int(other, 16))
    assert superseded is not None
    reason = superseded.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.superseded
    ledger = json.loads((bridges / "revoked.json").read_text())
    assert [(e["center_id"], e["serial"], e["reason"]) for e in ledger] == [
        (CENTER, first, "key_compromise"), ("hcm-thu-duc", other, "superseded")
    ]
    assert second not in pki.revoked_serials() and replacement not in pki.revoked_serials()
    # near the CRL's end: signed again, the same serials and a later end
    before = pki.crl_next_update()
    late = dt.datetime.now(dt.UTC) + dt.timedelta(days=CRL_DAYS - 3)
    assert refresh_crl(directory, now=late) is True
    assert pki.crl_next_update() > before + dt.timedelta(days=20)
    assert pki.revoked_serials() == {first, other}


def test_province_init_writes_units_systemd_accepts_and_their_commands_run(tmp_path: Path) -> None:
    """The province broker's unit and the daily province-crl (service + timer): ``systemd-analyze
    verify`` says nothing about them, and the commands they hold run here on the folder they name."""
    secret = tmp_path / "passphrase"
    secret.write_bytes(PASSPHRASE + b"\n")
    directory = (tmp_path / "pv").resolve()
    assert (
        provision(
            "province-init", "--dir", str(directory), "--province", PROVINCE, "--passphrase-file", str(secret)
        )
        == 0
    )
    units = {p.name: p.read_text(encoding="utf-8") for p in (directory / "systemd").iterdir()}
    assert set(units) == {
        "motcua-province-broker.service",
        "motcua-province-crl.service",
        "motcua-province-crl.timer",
    }
    broker, crl, timer = (
        units[f"motcua-province-{n}"] for n in ("broker.service", "crl.service", "crl.timer")
    )
    assert f"ExecStart=/usr/sbin/mosquitto -c {directory}/broker/mosquitto.conf" in broker
    assert f"Environment=OPENSSL_CONF={directory}/broker/openssl.cnf" in broker
    assert "User=mosquitto" in broker and "ExecReload=/bin/kill -HUP $MAINPID" in broker
    assert "Type=oneshot" in crl and "OnCalendar=daily" in timer and "Persistent=true" in timer
    # without --install-dir the project is where the runbook installs it
    python, app = "/opt/motcua/.venv/bin/python", "/opt/motcua/main.py"
    assert f"ExecStartPre=+{python} {app} provision crl-compact --dir {directory}\n" in broker
    assert f"WorkingDirectory=/opt/motcua\nExecStart={python} main.py provision province-crl" in crl
    assert json.loads((directory / "province.json").read_text())["install_dir"] == "/opt/motcua"
    # the same settings again: nothing rewritten
    assert provision("province-init", "--dir", str(directory), "--province", PROVINCE) == 0
    assert {p.name: p.read_text(encoding="utf-8") for p in (directory / "systemd").iterdir()} == units

    # what systemd would run, with this machine's Python and checkout for /opt/motcua
    here = tmp_path / "units"
    result = verify_units(units, here)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )
    for name, key in (
        ("motcua-province-crl.service", "ExecStart="),
        ("motcua-province-broker.service", "ExecStartPre=+"),
    ):
        line = next(ln for ln in (here / name).read_text().splitlines() if ln.startswith(key))
        run = subprocess.run(
            shlex.split(line.removeprefix(key)), cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, f"{name}: {run.stdout}{run.stderr}"


def test_province_init_install_dir_goes_into_the_units_and_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--install-dir``: the units run the project there (this checkout, so systemd-analyze checks
    them as written and their commands run), it is kept in ``province.json`` like the other settings,
    and a relative path or one a unit line cannot hold is refused before anything is made."""
    secret = tmp_path / "passphrase"
    secret.write_bytes(PASSPHRASE + b"\n")
    directory = (tmp_path / "pv").resolve()
    init = ["province-init", "--dir", str(directory), "--province", PROVINCE,
            "--passphrase-file", str(secret)]
    refusals = (("opt/motcua", "is not an absolute path"), ("/opt/mot cua", "cannot go into a systemd"))
    for bad, says in refusals:
        assert provision(*init, "--install-dir", bad, "--lang", "en") == 78
        err = capsys.readouterr().err
        assert f"ERROR: install_dir: {bad!r} {says}" in err, err
        assert not directory.exists()
    assert provision(*init, "--install-dir", str(ROOT)) == 0
    units = {p.name: p.read_text(encoding="utf-8") for p in (directory / "systemd").iterdir()}
    assert not any("/opt/motcua" in text for text in units.values())
    python = f"{ROOT}/.venv/bin/python"
    broker, crl = units["motcua-province-broker.service"], units["motcua-province-crl.service"]
    assert f"ExecStartPre=+{python} {ROOT}/main.py provision crl-compact --dir {directory}\n" in broker
    run_crl = f"ExecStart={python} main.py provision province-crl --dir {directory}\n"
    assert f"WorkingDirectory={ROOT}\n{run_crl}" in crl
    assert json.loads((directory / "province.json").read_text())["install_dir"] == str(ROOT)
    # a later run with the same folder keeps it; without --install-dir it is another setting: refused
    capsys.readouterr()
    assert provision(*init[:5], "--install-dir", str(ROOT), "--json") == 0
    assert json.loads(capsys.readouterr().out)["made"] == []
    assert provision(*init[:5], "--json") == 65
    assert "(install_dir)" in json.loads(capsys.readouterr().out)["error"]
    assert {p.name: p.read_text(encoding="utf-8") for p in (directory / "systemd").iterdir()} == units
    result = verify_units(units, tmp_path / "units")  # nothing of /opt/motcua left to replace
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )
    line = next(ln for ln in crl.splitlines() if ln.startswith("ExecStart="))
    run = subprocess.run(
        shlex.split(line.removeprefix("ExecStart=")), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_province_init_lets_the_broker_user_read_its_files_and_no_ca_key() -> None:
    """The unit starts Mosquitto as ``mosquitto``: province-init (as root, the user existing) gives it
    the folder, ``pki/`` and its key by group, ``broker/`` by owner; read as that user (runuser), its key,
    certificate, CA, CRL, configuration and ACL open, the CA keys, the workers' keys and the settings do
    not. Without the user (or root), the same changes are printed as commands, naming no other key."""
    import os
    import pwd
    import shutil
    import tempfile

    from provisioning.province import ProvinceLayout, grant_broker_access

    folder = Path(tempfile.mkdtemp(prefix="pv-access-"))  # not under pytest's 0700 folder
    try:
        os.chmod(folder, 0o755)
        secret = folder / "passphrase"
        secret.write_bytes(PASSPHRASE)
        directory = folder / "pv"
        assert provision("province-init", "--dir", str(directory), "--province", PROVINCE,
                         "--passphrase-file", str(secret)) == 0
        layout = ProvinceLayout(directory.resolve())
        commands = grant_broker_access(layout, user="no-such-user-here")
        text = " && ".join(commands)
        assert f"chmod 0640 {layout.pki.key_file('broker')}" in text
        assert f"chown no-such-user-here:no-such-user-here {layout.broker}" in text
        for secret_key in ("issuing-ca.key", "root-ca.key", "fleet-1.key", "pki-state.json"):
            assert secret_key not in text
        try:
            pwd.getpwnam("mosquitto")
        except KeyError:
            pytest.skip("no mosquitto user here: the changes are only printed")
        if os.geteuid() != 0 or shutil.which("runuser") is None:
            pytest.skip("not root: the changes are only printed")

        def readable(relative: str) -> bool:
            run = subprocess.run(["runuser", "-u", "mosquitto", "--", "cat", str(directory / relative)],
                                 capture_output=True, timeout=10)
            return run.returncode == 0

        crl = next((directory / "pki" / "crl.d").iterdir()).relative_to(directory)
        for relative in ("pki/broker.key", "pki/broker.crt", "pki/ca.crt", "pki/crl.pem", str(crl),
                         "broker/mosquitto.conf", "broker/motcua.acl", "broker/openssl.cnf"):
            assert readable(relative), relative
        for relative in ("pki/issuing-ca.key", "pki/root-ca.key", "pki/fleet-1.key", "pki/fleet-2.key",
                         "pki/pki-state.json", "province.json"):
            assert not readable(relative), relative
        writes = subprocess.run(["runuser", "-u", "mosquitto", "--", "touch",
                                 str(directory / "broker" / "data" / "x"), str(directory / "broker" / "pid")],
                                timeout=10)
        assert writes.returncode == 0
        assert (directory / "pki" / "broker.key").stat().st_mode & 0o777 == 0o640
    finally:
        shutil.rmtree(folder, ignore_errors=True)
