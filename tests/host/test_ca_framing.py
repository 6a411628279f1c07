"""endpoint.ca is framed, not parsed, on the host (device_config): the files a board gets are the
bytes cryptography would write, and what is not a certificate is named as such."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from authprobe import device_config
from authprobe.errors import ConfigError
from tests.fixtures.probe_servers import TestPKI

CONFIG = """
[device]
client_id = "c1"
[endpoint]
host = "abc-ats.iot.eu-west-1.amazonaws.com"
ca = "{ca}"
[auth]
authorizer = "A"
token_key_name = "token"
token = "t0k"
signature = "QUJD+/=="
"""


def config_with_ca(tmp_path, data: bytes, name: str = "ca.pem") -> dict:
    (tmp_path / name).write_bytes(data)
    path = tmp_path / "device.toml"
    path.write_text(CONFIG.format(ca=name))
    return device_config.load(path)


@pytest.fixture(scope="module")
def two_cas(tmp_path_factory):
    first = TestPKI(tmp_path_factory.mktemp("a"))
    second = TestPKI(tmp_path_factory.mktemp("b"))
    return [x509.load_der_x509_certificate(p.ca_der) for p in (first, second)]


def test_one_certificate_goes_as_cryptography_writes_it(tmp_path, two_cas):
    cert = two_cas[0]
    pem = cert.public_bytes(serialization.Encoding.PEM)
    der = cert.public_bytes(serialization.Encoding.DER)
    for data, name in ((pem, "ca.pem"), (der, "ca.der"), (b"comment line\n" + pem.replace(b"\n", b"\r\n"), "ca.crt")):
        cfg = config_with_ca(tmp_path, data, name)
        assert device_config.device_files(cfg, "micropython")[device_config.CA_DER] == der
        assert device_config.device_files(cfg, "circuitpython")[device_config.CA_PEM] == pem


def test_a_bundle_goes_as_one_pem_file(tmp_path, two_cas):
    pems = [c.public_bytes(serialization.Encoding.PEM) for c in two_cas]
    cfg = config_with_ca(tmp_path, b"\n".join(pems))
    files = device_config.device_files(cfg, "micropython")
    assert files[device_config.CA_PEM] == b"".join(pems)
    assert [c.subject for c in x509.load_pem_x509_certificates(files[device_config.CA_PEM])] == \
        [c.subject for c in two_cas]


def not_certificates(der: bytes, pem: bytes) -> list[tuple[str, bytes]]:
    body = pem.split(b"-----")[2]
    return [
        ("text", b"hello"),
        ("a truncated DER certificate", der[:-10]),
        ("DER with bytes after it", der + b"\x00"),
        ("a PEM block of garbage", b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
        ("a private key", b"-----BEGIN PRIVATE KEY-----\n" + body + b"-----END PRIVATE KEY-----\n"),
        ("a DER SEQUENCE that is not a certificate", b"\x30\x03\x02\x01\x05"),
        ("a length that runs past the data", b"\x30\x84\xff\xff\xff\xff"),
        ("a good block then a bad one", pem + b"-----BEGIN CERTIFICATE-----\n" + base64.b64encode(b"\x30\x00")
         + b"\n-----END CERTIFICATE-----\n"),
    ]


@pytest.mark.parametrize("case", range(8))
def test_what_is_not_a_certificate_is_named(tmp_path, two_cas, case):
    cert = two_cas[0]
    what, data = not_certificates(cert.public_bytes(serialization.Encoding.DER),
                                  cert.public_bytes(serialization.Encoding.PEM))[case]
    with pytest.raises(ConfigError, match="holds no PEM or DER certificate") as err:
        config_with_ca(tmp_path, data)
    assert err.value.exit_code == 2, what
