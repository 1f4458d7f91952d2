"""The OPC UA server's certificate (edge/opcua/certs.py) and `discharge-edge opcua cert`
(edge/opcua/cli.py): made once with the application URI and the host, the key 0600; kept and
checked after; renewed on request; refused when half a pair is there, the key is readable by
others or belongs to another certificate. And the `serve: opcua:` options (parse_options)."""

from __future__ import annotations

import argparse
import json
import os
import stat

import pytest
from cryptography import x509

from edge.lineview.serve import ServeError
from edge.opcua.certs import CERT_FILE, KEY_FILE, CertificateError, ensure_certificate
from edge.opcua.cli import register
from edge.opcua.server import DEFAULT_MAX_ALARMS, OpcuaOptions, parse_options

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("cert") / "opcua"
    return d, ensure_certificate(d, hostname="ipc-line1", days=30)


def test_a_certificate_is_made_with_the_uri_and_a_private_key(made):
    d, cert = made
    assert cert.created and cert.cert_path == d / CERT_FILE and cert.key_path == d / KEY_FILE
    assert stat.S_IMODE(d.stat().st_mode) == 0o700 and stat.S_IMODE(cert.key_path.stat().st_mode) == 0o600
    assert cert.application_uri == "urn:discharge-edge:ipc-line1" and 29.9 < cert.days_left <= 30.0
    x = x509.load_der_x509_certificate(cert.cert_path.read_bytes())
    san = x.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:discharge-edge:ipc-line1"]
    assert set(san.get_values_for_type(x509.DNSName)) == {"ipc-line1", "localhost"}
    assert x.public_key().key_size == 2048 and len(cert.thumbprint_sha1) == 40
    assert not list(d.glob("*.tmp"))


def test_an_existing_pair_is_kept_and_renew_makes_a_new_one(tmp_path):
    first = ensure_certificate(tmp_path / "c", hostname="h1")
    again = ensure_certificate(tmp_path / "c", hostname="other")
    assert not again.created and again.thumbprint_sha1 == first.thumbprint_sha1
    assert again.application_uri == "urn:discharge-edge:h1"
    renewed = ensure_certificate(tmp_path / "c", hostname="h2", renew=True)
    assert renewed.created and renewed.thumbprint_sha1 != first.thumbprint_sha1
    assert renewed.application_uri == "urn:discharge-edge:h2"


def test_half_a_pair_a_readable_key_and_a_foreign_key_are_refused(tmp_path, made):
    _, good = made
    d = tmp_path / "half"
    d.mkdir()
    (d / CERT_FILE).write_bytes(good.cert_path.read_bytes())
    with pytest.raises(CertificateError, match=rf"{CERT_FILE} is there but .*{KEY_FILE} is missing.*--renew"):
        ensure_certificate(d)
    other = ensure_certificate(tmp_path / "other", hostname="x")
    fd = os.open(d / KEY_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, other.key_path.read_bytes())
    os.close(fd)
    with pytest.raises(CertificateError, match="does not belong to"):
        ensure_certificate(d)
    os.chmod(other.key_path, 0o640)
    with pytest.raises(CertificateError, match=r"mode 0640.*chmod 600"):
        ensure_certificate(tmp_path / "other")


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="discharge-edge")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_the_cert_command_makes_then_keeps(tmp_path, capsys):
    d = tmp_path / "install" / "opcua"
    assert run_cli(["opcua", "cert", "--dir", str(d), "--hostname", "ipc", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["created"] is True and made["application_uri"] == "urn:discharge-edge:ipc"
    assert made["cert_path"] == str(d / CERT_FILE) and made["days_left"] == pytest.approx(3650, abs=0.1)
    assert run_cli(["opcua", "cert", "--dir", str(d)]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"discharge-edge opcua cert: kept {d / CERT_FILE}") and made["thumbprint_sha1"] in err
    (d / CERT_FILE).unlink()
    assert run_cli(["opcua", "cert", "--dir", str(d)]) == 1
    assert "is there but" in capsys.readouterr().err


def test_options():
    assert parse_options(None) == OpcuaOptions(False, None, DEFAULT_MAX_ALARMS, None)
    got = parse_options({"anonymous": True, "certificate_dir": "/etc/discharge-edge/opcua", "max_alarms": 10,
                         "trusted_clients": "scada"})
    assert got.anonymous and str(got.certificate_dir) == "/etc/discharge-edge/opcua" and got.max_alarms == 10
    assert str(got.trusted_clients) == "scada"
    with pytest.raises(ServeError) as exc:
        parse_options({"anonymous": "yes", "certificate_dir": "", "max_alarms": 0, "policy": "None",
                       "trusted_clients": 3}, "l.yaml")
    lines = str(exc.value).splitlines()
    assert lines == ["l.yaml: serve.opcua.policy: unknown key; allowed: host, port, anonymous, certificate_dir, "
                     "max_alarms, trusted_clients",
                     "l.yaml: serve.opcua.anonymous: is 'yes'; allowed: true or false",
                     "l.yaml: serve.opcua.certificate_dir: is ''; allowed: a folder (relative: under the state dir)",
                     "l.yaml: serve.opcua.max_alarms: is 0; allowed: an integer 1..10000",
                     "l.yaml: serve.opcua.trusted_clients: is 3; allowed: a folder of client certificates (.der, "
                     ".pem; relative: under the state dir)"]
