"""WAMP over TLS through a real Crossbar.io router: wss:// and RawSocket over TLS.

One router for the module, with a server certificate signed by a CA made
here (the `cryptography` package, a dependency of crossbar). Components
trust that CA with autobahn's endpoint settings (``"tls": {"trust_root":
...}``) or the framework's own TLS object (an `ssl.SSLContext` under asyncio,
Twisted's ``optionsForClientTLS`` under Twisted: these tests run under both,
see `scripts/test.sh`); a client that trusts something else
fails to join at once, with an error that says why.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import FRAMEWORK
from helpers import start
from transports.wamp_router import authentication, start_router

import hedgerow as hr
from hedgerow.cli import router as router_command
from hedgerow.transports import (
    NOT_CONNECTED,
    ApplicationError,
    Call,
    Crossbar,
    Leave,
    RouterConfig,
    WampTransport,
    check_transport_settings,
    node_config,
)

TIMEOUT = 20.0


# -- certificates -------------------------------------------------------------------


def _make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate it signs (127.0.0.1 and localhost), and a stranger CA."""
    x509 = pytest.importorskip(
        "cryptography.x509", reason="the TLS tests make certificates with `cryptography`"
    )
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    now = dt.datetime.now(dt.UTC)

    def name(common: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def builder(subject: str, issuer: str, key: Any, issuer_key: Any) -> Any:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
            )
        )

    def ca(common: str) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            builder(common, common, key, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            )
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def pem(cert: Any) -> bytes:
        return bytes(cert.public_bytes(serialization.Encoding.PEM))

    ca_key, ca_cert = ca("hedgerow test CA")
    _, stranger_cert = ca("somebody else's CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        builder("127.0.0.1", "hedgerow test CA", server_key, ca_key)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {
        "ca": directory / "ca.pem",
        "stranger": directory / "stranger-ca.pem",
        "certificate": directory / "server.pem",
        "key": directory / "server.key",
    }
    paths["ca"].write_bytes(pem(ca_cert))
    paths["stranger"].write_bytes(pem(stranger_cert))
    paths["certificate"].write_bytes(pem(server_cert))
    paths["key"].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths["key"].chmod(0o600)
    return paths


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_router(tmp_path_factory: pytest.TempPathFactory, certificates: dict[str, Path]):
    """One Crossbar.io router for this module: wss:// and rss:// on free ports of 127.0.0.1."""
    router = start_router(
        tmp_path_factory.mktemp("crossbar-tls"),
        rawsocket_path=None,
        tls_key=certificates["key"],
        tls_certificate=certificates["certificate"],
    )
    yield router
    router.close()


def _tcp(url: str) -> tuple[str, int]:
    host, port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    return host, int(port)


def wss_settings(router: Crossbar, tls: Any) -> dict[str, Any]:
    """WebSocket over TLS, as autobahn spells it: a wss:// URL and its endpoint's ``tls``."""
    url = router.config.websocket_url
    assert url is not None
    host, port = _tcp(url)
    return {"url": url, "endpoint": {"type": "tcp", "host": host, "port": port, "tls": tls}}


def rss_settings(router: Crossbar, tls: Any) -> dict[str, Any]:
    """RawSocket over TLS: an rss:// URL, and the endpoint with its ``tls``."""
    url = router.config.rawsocket_url
    assert url is not None
    host, port = _tcp(url)
    return {
        "type": "rawsocket",
        "url": url,
        "endpoint": {"type": "tcp", "host": host, "port": port, "tls": tls},
    }


# -- the router's side --------------------------------------------------------------


def test_the_router_config_puts_crossbars_tls_section_on_the_tcp_endpoints(tmp_path):
    config = RouterConfig(
        websocket_port=9000,
        rawsocket_port=9001,
        rawsocket_path=str(tmp_path / "s.sock"),
        tls_key="server.key",
        tls_certificate=tmp_path / "server.pem",
    )
    assert config.websocket_url == "wss://127.0.0.1:9000/ws"
    assert config.rawsocket_url == "rss://127.0.0.1:9001"
    websocket, rawsocket, unix = node_config(config)["workers"][0]["transports"]
    tls = {"key": str(Path("server.key").absolute()), "certificate": str(tmp_path / "server.pem")}
    assert websocket["endpoint"]["tls"] == tls  # absolute: crossbar reads from its cbdir
    assert rawsocket["endpoint"]["tls"] == tls
    assert "tls" not in unix["endpoint"]
    with pytest.raises(ValueError, match="tls_key without tls_certificate"):
        RouterConfig(tls_key="server.key")
    with pytest.raises(ValueError, match="tls_certificate without tls_key"):
        RouterConfig(tls_certificate="server.pem")
    with pytest.raises(ValueError, match="TLS is for TCP transports"):
        RouterConfig(
            websocket_port=None,
            rawsocket_port=None,
            rawsocket_path="s.sock",
            tls_key="k",
            tls_certificate="c",
        )


def test_hedgerow_router_takes_a_tls_key_and_certificate(certificates):
    args = ["--print-config", "--anonymous", "--no-rawsocket", "--ws-port", "9000"]
    key, certificate = str(certificates["key"]), str(certificates["certificate"])
    tls = ["--tls-key", key, "--tls-certificate", certificate]
    result = CliRunner().invoke(router_command, [*args, *tls], env={})
    assert result.exit_code == 0, result.output
    (websocket,) = json.loads(result.output)["workers"][0]["transports"]
    assert websocket["endpoint"]["tls"] == {"key": key, "certificate": certificate}
    result = CliRunner().invoke(router_command, [*args, *tls[:2]], env={})
    assert result.exit_code == 2
    assert "tls_key without tls_certificate" in result.output


# -- clients that trust the router's CA -------------------------------------------


def native_tls(ca: Path, hostname: str = "127.0.0.1") -> Any:
    """The framework's own TLS settings object trusting `ca`, for the endpoint's ``tls``."""
    if FRAMEWORK == "twisted":
        from twisted.internet import ssl as twisted_ssl  # noqa: PLC0415 - Twisted runs only

        root = twisted_ssl.Certificate.loadPEM(ca.read_bytes())
        return twisted_ssl.optionsForClientTLS(hostname, trustRoot=root)
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))


def assert_verification_failed(error: BaseException | None, case: str) -> None:
    """`error` is the framework's own report of a certificate that did not verify."""
    if FRAMEWORK == "twisted":
        from OpenSSL import SSL  # noqa: PLC0415
        from service_identity import VerificationError  # noqa: PLC0415

        expected = VerificationError if case == "wrong hostname" else SSL.Error
        assert isinstance(error, expected), repr(error)
    else:
        assert isinstance(error, ssl.SSLCertVerificationError), repr(error)


@pytest.mark.parametrize(
    ("kind", "trust"),
    [("wss", "trust_root"), ("rss", "native")],
)
def test_rpc_between_a_component_and_a_client_over_tls(tls_router, certificates, kind, trust):
    tls: Any = (
        {"trust_root": str(certificates["ca"])}
        if trust == "trust_root"
        else native_tls(certificates["ca"])
    )
    settings = (wss_settings if kind == "wss" else rss_settings)(tls_router, tls)
    procedure = f"com.example.tls.{kind}.add"
    comp = hr.Component(transports=[settings], authentication=authentication(), name="served")
    comp.register(procedure)(lambda a, b: a + b)
    joined: list[Any] = []
    comp.on_join(lambda session, details: joined.append(details.transport))
    tree, _ = start(hr.SupervisorSpec([comp.child_spec()]))
    with tree:
        link = WampTransport(settings).join("realm1", None, authentication=authentication())
        link = link.result(TIMEOUT)
        try:
            assert link.handle(Call(procedure, [2, 3], {})).result(TIMEOUT).args == [5]
        finally:
            link.handle(Leave()).result(TIMEOUT)
    assert len(joined) == 1


def test_hostname_checks_the_certificate_against_another_name(tls_router, certificates):
    settings = wss_settings(
        tls_router, {"trust_root": str(certificates["ca"]), "hostname": "localhost"}
    )
    link = WampTransport(settings).join("realm1", None, authentication=authentication())
    link = link.result(TIMEOUT)
    assert link.is_open
    link.handle(Leave()).result(TIMEOUT)


# -- clients that do not ------------------------------------------------------------


def _untrusting(router: Crossbar, certificates: dict[str, Path], case: str) -> dict[str, Any]:
    if case == "system trust store":  # a bare wss:// URL: tls=True, as autobahn does
        return {"url": router.config.websocket_url}
    if case == "another CA":
        return rss_settings(router, {"trust_root": str(certificates["stranger"])})
    assert case == "wrong hostname"
    return wss_settings(
        router, {"trust_root": str(certificates["ca"]), "hostname": "router.example.com"}
    )


@pytest.mark.parametrize("case", ["system trust store", "another CA", "wrong hostname"])
def test_a_client_that_does_not_trust_the_certificate_fails_to_join_and_says_why(
    tls_router, certificates, case
):
    transport = WampTransport(_untrusting(tls_router, certificates, case))
    future = transport.join("realm1", None, authentication=authentication())
    with pytest.raises(ApplicationError) as info:
        future.result(TIMEOUT)
    error = info.value
    assert error.error == NOT_CONNECTED
    message = error.error_message()
    assert f"TLS handshake with {transport.describe()} failed" in message
    assert_verification_failed(error.__cause__, case)
    if case == "wrong hostname":
        assert "not valid for the name checked" in message
        assert "router.example.com" in message
        return
    assert "the router's certificate is not trusted" in message
    assert "trust_root" in message
    expected = "optionsForClientTLS" if FRAMEWORK == "twisted" else "an ssl.SSLContext"
    assert expected in message
    if case == "another CA":
        assert str(certificates["stranger"]) in message
    else:
        assert "the system's trust store" in message


def test_a_component_that_does_not_trust_the_router_fails_to_start_and_reports_it(
    tls_router, certificates
):
    settings = rss_settings(tls_router, {"trust_root": str(certificates["stranger"])})
    comp = hr.Component(transports=[settings], authentication=authentication(), name="wary")
    failures: list[BaseException] = []
    comp.on_connectfailure(lambda component, exc: failures.append(exc))
    with pytest.raises(hr.StartError) as info:
        start(hr.SupervisorSpec([comp.child_spec()]))
    assert "wary" in str(info.value)
    (failure,) = failures
    assert isinstance(failure, ApplicationError)
    assert "not trusted" in failure.error_message()


# -- settings -----------------------------------------------------------------------


def test_tls_settings_are_checked_before_connecting(tmp_path):
    endpoint = {"type": "tcp", "host": "127.0.0.1", "port": 1}
    with pytest.raises(ValueError, match="Invalid key 'ca' in 'tls' config"):
        check_transport_settings(
            {"url": "wss://h:1/ws", "endpoint": {**endpoint, "tls": {"ca": 1}}}
        )
    with pytest.raises(ValueError, match=r"invalid type .* for trust_root"):
        check_transport_settings(
            {"url": "wss://h:1/ws", "endpoint": {**endpoint, "tls": {"trust_root": 7}}}
        )
    with pytest.raises(ValueError, match="must be a dict, bool or SSLContext"):
        check_transport_settings({"url": "wss://h:1/ws", "endpoint": {**endpoint, "tls": "yes"}})
    missing = tmp_path / "no-such-ca.pem"
    transport = WampTransport(
        {"url": "wss://h:1/ws", "endpoint": {**endpoint, "tls": {"trust_root": str(missing)}}}
    )
    with pytest.raises(ValueError, match=r"cannot load the trusted CA certificates .*'trust_root'"):
        transport.join("realm1", None).result(TIMEOUT)
    plain = WampTransport({"url": "ws://h:1/ws"})
    assert plain.tls_context() == (None, None)
    context, hostname = WampTransport("rss://127.0.0.1:9001").tls_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert hostname == "127.0.0.1"


def test_the_other_frameworks_tls_object_is_refused_with_what_to_do_instead(certificates):
    """An ssl.SSLContext is asyncio's, Twisted's options are Twisted's: each names the way out."""
    ca = str(certificates["ca"])
    if FRAMEWORK == "twisted":
        foreign: Any = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
        expected = r"an ssl.SSLContext .* is for asyncio; under Twisted give a dict"
    else:
        from twisted.internet import ssl as twisted_ssl  # noqa: PLC0415 - installs no reactor

        foreign = twisted_ssl.optionsForClientTLS("127.0.0.1")
        expected = r"Twisted's TLS options.*hedgerow.use_framework\('twisted'\)"
    settings = {
        "url": "wss://127.0.0.1:1/ws",
        "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": 1, "tls": foreign},
    }
    transport = WampTransport(settings)  # valid settings: the framework decides at join
    with pytest.raises(ValueError, match=expected):
        transport.join("realm1", None).result(TIMEOUT)


def test_twisteds_tls_options_trust_every_certificate_of_the_trust_root(certificates, tmp_path):
    """Twisted's options are made from the same settings (no reactor needed to check them)."""
    from twisted.internet.interfaces import IOpenSSLClientConnectionCreator  # noqa: PLC0415

    from hedgerow.transports._framework import twisted_tls  # noqa: PLC0415

    bundle = tmp_path / "bundle.pem"
    bundle.write_text(certificates["stranger"].read_text() + certificates["ca"].read_text())
    endpoint = {"type": "tcp", "host": "127.0.0.1", "port": 1}

    def made(tls: Any) -> Any:
        return twisted_tls(
            WampTransport({"url": "wss://h:1/ws", "endpoint": {**endpoint, "tls": tls}})
        )

    assert IOpenSSLClientConnectionCreator.providedBy(made({"trust_root": str(bundle)}))
    assert IOpenSSLClientConnectionCreator.providedBy(made(True))
    native = native_tls(certificates["ca"]) if FRAMEWORK == "twisted" else None
    if native is not None:
        assert made(native) is native
    assert twisted_tls(WampTransport({"url": "ws://h:1/ws"})) is None
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"'trust_root' \(.*empty.pem\): no PEM certificate"):
        made({"trust_root": str(empty)})
    with pytest.raises(ValueError, match=r"cannot load the trusted CA certificates .*missing.pem"):
        made({"trust_root": str(tmp_path / "missing.pem")})
    with pytest.raises(
        ValueError, match=r"an ssl\.SSLContext in the endpoint's 'tls' is for asyncio"
    ):
        made(ssl.create_default_context())
