"""Key material for the variants: a CA and a server certificate (--tls), a
signing key file (--signed)."""
import os
import subprocess


def make_certs(workdir):
    """A CA and a server certificate for 127.0.0.1 (openssl CLI), for --tls."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    f = lambda name: os.path.join(workdir, name)  # noqa: E731
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f("ca.key"), "-out", f("ca.crt"), "-days",
            "2", "-subj", "/CN=bench CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f("server.key"), "-out", f("server.csr"), "-subj",
            "/CN=127.0.0.1")
    with open(f("san.ext"), "w") as out:
        out.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", f("server.csr"), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-CAcreateserial",
            "-out", f("server.crt"), "-days", "2", "-extfile", f("san.ext"))
    return f("ca.crt"), f("server.crt"), f("server.key")


SIGNING_KEY = "whsec_YmVuY2gtc2lnbmluZy1rZXktYmVuY2gtc2lnbmluZy1rZXk="


def signing_key_file(workdir):
    """A key file private to its owner, as evhost requires."""
    path = os.path.join(workdir, "signing.key")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(SIGNING_KEY + "\n")
    return path
