# mypy: disable-error-code="no-untyped-call"
# (Twisted leaves many of its functions unannotated.)
"""Twisted's TLS for a WAMP connection: the connection creator autobahn's Twisted
Component makes from an endpoint's ``tls``, and how to tell Twisted's TLS options.

Nothing here imports Twisted until a Twisted TLS connection is made.
"""

from __future__ import annotations

import os
import re
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hedgerow.transports._event_loop import WampEndpoint

__all__ = ["is_twisted_tls", "twisted_tls"]


def twisted_tls(transport: WampEndpoint) -> Any:
    """A Twisted TLS connection creator for `transport`, as autobahn's Twisted Component
    makes it; None without TLS.

    The endpoint's ``tls`` dict trusts ``trust_root`` (every certificate in
    that PEM file; the system's store without it) and checks ``hostname``
    (the endpoint's host by default); ``True`` is the same with the system's
    store; Twisted's own options (``optionsForClientTLS``, a
    ``CertificateOptions``) are used as they are. An `ssl.SSLContext` is
    asyncio's and is refused with ValueError, as is a ``trust_root`` that
    cannot be read.
    """
    request = transport.tls_request()
    if request is None:
        return None
    setting, hostname, trust_root = request
    if is_twisted_tls(setting):
        return setting
    if isinstance(setting, ssl.SSLContext):
        msg = (
            f"transport {transport.describe()}: an ssl.SSLContext in the endpoint's 'tls' "
            "is for asyncio; under Twisted give a dict ({'trust_root': ..., 'hostname': "
            "...}), True, or twisted.internet.ssl.optionsForClientTLS(...)"
        )
        raise ValueError(msg)  # noqa: TRY004 - a bad setting, as every other is reported
    from twisted.internet import ssl as tls  # noqa: PLC0415

    trust = None
    if trust_root is not None:
        try:
            pem = Path(os.fspath(trust_root)).read_text(encoding="ascii")
            blocks = _PEM_CERTIFICATE.findall(pem)
            if not blocks:
                msg = "no PEM certificate in it"
                raise ValueError(msg)  # noqa: TRY301 - reported as the other failures are
            trust = tls.trustRootFromCertificates(
                [tls.Certificate.loadPEM(block) for block in blocks]
            )
        except (OSError, ValueError, tls.SSL.Error) as exc:  # type: ignore[attr-defined]
            raise transport.unreadable_trust_root(trust_root, exc) from exc
    return tls.optionsForClientTLS(hostname, trustRoot=trust)


_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def is_twisted_tls(value: Any) -> bool:
    """Whether `value` is Twisted's TLS options (a connection creator or CertificateOptions).

    False without importing Twisted when the application has not imported it.
    """
    interfaces = sys.modules.get("twisted.internet.interfaces")
    if interfaces is not None and interfaces.IOpenSSLClientConnectionCreator.providedBy(value):
        return True
    twisted_ssl = sys.modules.get("twisted.internet._sslverify")
    return twisted_ssl is not None and isinstance(value, twisted_ssl.OpenSSLCertificateOptions)
