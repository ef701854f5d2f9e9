"""Writes a self-signed TLS certificate for moto server to serve HTTPS with,
valid for `localhost` and 127.0.0.1, and its private key.

Usage: python tls_cert.py CERT_PEM KEY_PEM

The certificate is its own trust anchor: clients trust it by loading
CERT_PEM as their CA bundle. It is a leaf (CA:FALSE) with the serverAuth
usage, as rustls (webpki) requires of a certificate a server presents.
Made with `cryptography`, which moto already depends on.
"""

import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def main():
    cert_path, key_path = sys.argv[1], sys.argv[2]
    key = ec.generate_private_key(ec.SECP256R1())
    # The names clients check are in the SAN. The subject is one no system
    # root has (Debian's ssl-cert snakeoil root is CN=localhost), so an
    # untrusting client fails the same way everywhere: unknown issuer.
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lambdagate test moto")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    # The key is readable by its owner only.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


if __name__ == "__main__":
    main()
