"""A test-made PKI (openssl): a CA, a broker certificate for IP:127.0.0.1, a client certificate."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    broker_pem: Path  # PKCS#8 key + certificate chain, one PEM file (Kafka's PEM keystore)
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed for the TLS test"
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True)


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    run = lambda *a: _openssl(*a, cwd=folder)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=stream-ids test CA", "-keyout", "ca.key", "-out", "ca.pem")
    for name, extension in (
        ("broker", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (folder / f"{name}.ext").write_text(extension + "\n")
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=stream-ids {name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt")
        run("pkcs8", "-topk8", "-nocrypt", "-in", f"{name}.key", "-out", f"{name}.p8.key")
    (folder / "broker.pem").write_text(
        (folder / "broker.p8.key").read_text() + (folder / "broker.crt").read_text()
    )
    return Pki(folder / "ca.pem", folder / "broker.pem", folder / "client.crt",
               folder / "client.p8.key")
