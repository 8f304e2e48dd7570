"""WAMP transport settings, validated as autobahn's Component validates them.

The keys, rules and messages are those of autobahn's ``_create_transport``
and ``_validate_endpoint`` (``autobahn/wamp/component.py``) and of its asyncio
connect code, so an autobahn user reads the same error for the same mistake.
A few of autobahn's slips are not repeated: a float ``timeout`` is fine (it
wants an int), a RawSocket ``serializer`` is checked by name (it is not), the
retry settings are checked (they are not), a proxy error names the
missing key (``.formaT`` raises AttributeError there), a TLS ``trust_root``
must be a path (autobahn passes anything to ``ssl``), and ``tls: {}`` means
TLS with the system's trust store (autobahn takes an empty dict for no TLS).

TLS, as autobahn's asyncio Component takes it: a ``wss://`` or ``rss://`` URL
implies ``"tls": True`` on the endpoint (the system's trust store, the URL's
host checked against the certificate); an explicit endpoint may say
``"tls": {"hostname": ..., "trust_root": "ca.pem"}`` (trust the CA
certificates in that PEM file; check the certificate against ``hostname``,
the endpoint's host by default) or ``"tls": <an ssl.SSLContext>``. Under
Twisted (`hedgerow.use_framework`), the framework's own options object
(``twisted.internet.ssl.optionsForClientTLS(...)``) takes the place of the
SSLContext, as in autobahn's Twisted Component.

Defaults are hedgerow's: WebSocket offers msgpack, cbor, json (autobahn: cbor,
json); RawSocket carries msgpack (autobahn: cbor).
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from hedgerow.transports._serializers import SERIALIZERS
from hedgerow.transports._twisted_tls import is_twisted_tls

__all__ = ["DEFAULT_TIMEOUT", "RETRY_KEYS", "check_transport_settings"]

DEFAULT_TIMEOUT = 10.0
"""Seconds to connect (and then to join): autobahn's endpoint default."""

VALID_KEYS = (
    "type",
    "url",
    "endpoint",
    "serializer",
    "serializers",
    "options",
    "max_retries",
    "max_retry_delay",
    "initial_retry_delay",
    "retry_delay_growth",
    "retry_delay_jitter",
    "proxy",
    "headers",
)
RETRY_KEYS = (
    "max_retries",
    "max_retry_delay",
    "initial_retry_delay",
    "retry_delay_growth",
    "retry_delay_jitter",
)
ENDPOINT_KEYS = ("type", "host", "port", "path", "tls", "timeout", "version")


def _fail(msg: str) -> NoReturn:
    raise ValueError(msg)


def check_transport_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one transport's settings as autobahn does; the normalized settings.

    Returns a new dict with ``type``, ``url``, ``endpoint`` (a dict),
    ``serializers`` (a list; one for rawsocket), ``options``, ``proxy``,
    ``headers`` and the retry settings given. Raises ValueError naming the key.
    """
    if not isinstance(settings, Mapping):
        _fail(f"invalid type {type(settings)} for transport configuration - must be a dict")
    for key in settings:
        if key not in VALID_KEYS:
            _fail(f"'{key}' is not a valid configuration item")
    kind = settings.get("type", "websocket")
    if kind not in ("websocket", "rawsocket"):
        _fail(f"Invalid transport type {kind}")
    proxy = _check_proxy(settings, kind)
    options = settings.get("options", {})
    if not isinstance(options, Mapping):
        _fail(f"options must be a dict, not {type(options)}")
    url = settings.get("url")
    if url is not None and not isinstance(url, str):
        _fail(f"'url' must be a string, not {type(url)}")
    headers = settings.get("headers")
    if headers is not None and not isinstance(headers, Mapping):
        _fail(f"'headers' must be a dict, not {type(headers)}")
    if kind == "websocket":
        serializers = _websocket_serializers(settings)
    else:
        serializers = _rawsocket_serializers(settings)
    endpoint = _endpoint_from(settings, url, kind)
    retry = {key: settings[key] for key in RETRY_KEYS if key in settings}
    for key, value in retry.items():
        _check_retry(key, value)
    return {
        "type": kind,
        "url": url,
        "endpoint": endpoint,
        "serializers": serializers,
        "options": dict(options),
        "proxy": proxy,
        "headers": dict(headers) if headers is not None else None,
        **retry,
    }


def _websocket_serializers(settings: Mapping[str, Any]) -> list[str]:
    if "url" not in settings:
        _fail("Transport requires 'url' key")
    if "serializer" in settings:
        _fail("'serializer' is only for rawsocket; use 'serializers'")
    return check_serializer_list(settings.get("serializers", SERIALIZERS))


def _rawsocket_serializers(settings: Mapping[str, Any]) -> list[str]:
    if "url" not in settings and "endpoint" not in settings:
        _fail("Transport requires 'url' or 'endpoint' key")
    if "serializers" in settings:
        _fail("'serializers' is only for websocket; use 'serializer'")
    if settings.get("headers") is not None:
        _fail("'headers' not supported for rawsocket transport")
    serializer = settings.get("serializer", SERIALIZERS[0])
    if not isinstance(serializer, str):
        _fail("'serializer' must be a string")
    return check_serializer_list([serializer], key="serializer")


def check_serializer_list(value: Any, key: str = "serializers") -> list[str]:
    """A list of serializer names hedgerow speaks, or ValueError (autobahn's messages)."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        _fail(f"'{key}' must be a list of strings")
    if not all(isinstance(s, str) for s in value):
        _fail(f"'{key}' must be a list of strings")
    if not value:
        _fail(f"'{key}' must name at least one serializer")
    for name in value:
        if name not in SERIALIZERS:
            expected = ", ".join(repr(s) for s in SERIALIZERS)
            _fail(f"Invalid serializer '{name}' (expected one of: {expected})")
    return list(value)


def _check_proxy(settings: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    if "proxy" in settings and kind != "websocket":
        _fail("proxy= only supported for type=websocket transports")
    proxy = settings.get("proxy")
    if proxy is None:
        return None
    if not isinstance(proxy, Mapping):
        _fail(f"'proxy' must be a dict with 'host' and 'port', not {type(proxy)}")
    for key in proxy:
        if key not in ("host", "port"):
            _fail(f"Unknown key '{key}' in proxy config")
    for key in ("host", "port"):
        if key not in proxy:
            _fail(f"Proxy config requires '{key}'")
    return dict(proxy)


def _endpoint_from(settings: Mapping[str, Any], url: str | None, kind: str) -> dict[str, Any]:
    """The ``endpoint`` given (validated), or the one the URL implies (as autobahn)."""
    if "endpoint" in settings:
        check_endpoint(settings["endpoint"])
        return dict(settings["endpoint"])
    assert url is not None
    if kind == "websocket" or url.startswith(("ws://", "wss://")):
        from autobahn.websocket.util import parse_url as parse_ws_url  # noqa: PLC0415

        try:
            secure, host, port, _resource, _path, _params = parse_ws_url(url)
        except Exception as exc:
            msg = f"invalid WebSocket URL {url!r} in 'url': {exc}"
            raise ValueError(msg) from exc
    elif url.startswith(("rs://", "rss://")):
        from autobahn.rawsocket.util import parse_url as parse_rs_url  # noqa: PLC0415

        try:
            secure, host, port = parse_rs_url(url)
        except Exception as exc:
            msg = f"invalid RawSocket URL {url!r} in 'url': {exc}"
            raise ValueError(msg) from exc
    else:
        msg = f"invalid URL {url!r} in 'url': a rawsocket URL starts with rs://, rss:// or ws://"
        raise ValueError(msg)
    if host == "unix":
        return {"type": "unix", "path": port}
    return {"type": "tcp", "host": host, "port": port, "tls": secure}


def check_endpoint(endpoint: Any) -> None:
    """autobahn's ``_validate_endpoint`` plus its asyncio checks, with the same messages."""
    if not isinstance(endpoint, Mapping):
        _fail("'endpoint' must be a dict")
    if "type" not in endpoint:
        _fail("'type' required in endpoint configuration")
    if endpoint["type"] not in ("tcp", "unix"):
        _fail(f'invalid type "{endpoint["type"]}" in endpoint')
    for key in endpoint:
        if key not in ENDPOINT_KEYS:
            _fail(f"Invalid key '{key}' in endpoint configuration")
    if endpoint["type"] == "tcp":
        _check_tcp(endpoint)
    else:
        _check_unix(endpoint)
    timeout = endpoint.get("timeout", DEFAULT_TIMEOUT)
    if not _finite(timeout) or timeout <= 0:
        _fail(f"invalid timeout {timeout!r} in client endpoint configuration: expected seconds > 0")


def _check_tcp(endpoint: Mapping[str, Any]) -> None:
    for key in ("host", "port"):
        if key not in endpoint:
            _fail(f"'{key}' required in 'tcp' endpoint config")
    if "path" in endpoint:
        _fail("'path' not valid in 'tcp' endpoint config")
    if not isinstance(endpoint["host"], str):
        _fail(f"invalid type {type(endpoint['host'])} for host in client endpoint configuration")
    port = endpoint["port"]
    if not isinstance(port, int) or isinstance(port, bool):
        _fail(f"invalid type {type(port)} for port in client endpoint configuration")
    if endpoint.get("version", 4) not in (4, 6):
        _fail(f"invalid IP version {endpoint['version']} in client endpoint configuration")
    _check_tls(endpoint.get("tls"))


def _check_unix(endpoint: Mapping[str, Any]) -> None:
    if "path" not in endpoint:
        _fail("'path' required for 'unix' endpoint config")
    for key in ("host", "port", "tls"):
        if key in endpoint:
            _fail(f"'{key}' not valid in 'unix' endpoint config")


def _check_tls(tls: Any) -> None:
    if tls is None or isinstance(tls, (bool, ssl.SSLContext)) or is_twisted_tls(tls):
        return
    if not isinstance(tls, Mapping):
        _fail(
            "'tls' configuration must be a dict, bool or SSLContext instance "
            "(or, under Twisted, twisted.internet.ssl.optionsForClientTLS(...))"
        )
    for key in tls:
        if key not in ("hostname", "trust_root"):
            _fail(f"Invalid key '{key}' in 'tls' config")
    if "hostname" in tls and not isinstance(tls["hostname"], str):
        _fail(f"invalid type {tls['hostname']} for hostname in TLS client endpoint configuration")
    trust_root = tls.get("trust_root")
    if trust_root is not None and not isinstance(trust_root, (str, os.PathLike)):
        # autobahn hands it to ssl.create_default_context(cafile=...) unchecked.
        _fail(
            f"invalid type {type(trust_root)} for trust_root in TLS client endpoint "
            "configuration: expected the path of a PEM file of trusted CA certificates"
        )


def _finite(value: Any) -> bool:
    """A number a clock can use: not a bool, NaN, an infinity or an int beyond any float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _check_retry(key: str, value: Any) -> None:
    number = _finite(value)
    if key == "max_retries":
        if not isinstance(value, int) or isinstance(value, bool) or value < -1:
            _fail(f"'max_retries' must be an integer >= -1 (-1: for ever), not {value!r}")
    elif key == "retry_delay_growth":
        if not number or value < 1:
            _fail(f"'retry_delay_growth' must be a number >= 1, not {value!r}")
    elif not number or value < 0:
        _fail(f"'{key}' must be a number >= 0, not {value!r}")
