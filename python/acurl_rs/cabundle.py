"""Where the CA certificates are, for a libcurl whose built-in paths point nowhere.

The bundled, statically linked TLS library was configured on the build machine, so its
default CA locations are unreliable on the machine that runs the tests: TLS verification must
be given CAINFO/CAPATH explicitly. The same lookup order as OpenSSL users expect: environment
first, then the distribution's bundle, then certifi.
"""

from __future__ import annotations

import os

__all__ = ["CA_FILE_CANDIDATES", "find_ca_bundle"]

# Distribution CA bundles, most common first. Module-level so tests (and odd systems) can
# replace it; read on every call, never cached.
CA_FILE_CANDIDATES: tuple[str, ...] = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, CentOS, Fedora
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # RHEL, Fedora (ca-trust)
    "/etc/ssl/cert.pem",  # Alpine, macOS, BSDs
    "/etc/ssl/ca-bundle.pem",  # openSUSE, SLES
)


def _existing_dirs(value: str | None) -> str | None:
    # OpenSSL reads SSL_CERT_DIR as a list (":" on POSIX); keep the entries that exist.
    if not value:
        return None
    dirs = [d for d in value.split(os.pathsep) if d and os.path.isdir(d)]
    return os.pathsep.join(dirs) or None


def find_ca_bundle() -> tuple[str | None, str | None]:
    """Return ``(cafile, capath)`` for CURLOPT_CAINFO / CURLOPT_CAPATH; either may be None.

    SSL_CERT_FILE / SSL_CERT_DIR win when they name an existing file / directory (so a user
    can point at a private CA); otherwise the first distribution bundle found; otherwise
    certifi's bundle if certifi is installed; otherwise ``(None, None)``. Only a few stat()
    calls, and nothing cached, so a changed environment is seen on the next call.
    """
    env_file = os.environ.get("SSL_CERT_FILE")
    cafile = env_file if env_file and os.path.isfile(env_file) else None
    capath = _existing_dirs(os.environ.get("SSL_CERT_DIR"))
    if cafile is not None or capath is not None:
        return cafile, capath
    for candidate in CA_FILE_CANDIDATES:
        if os.path.isfile(candidate):
            return candidate, None
    try:
        import certifi
    except ImportError:
        return None, None
    return certifi.where(), None
