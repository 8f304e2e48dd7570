# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""Payloads between sessions of the in-process router: copied through their serializers.

A session that serializes has a codec (its negotiated `Serializer`); a
payload goes through the sender's codec and, if the receiver negotiated
another one, through that one too, so the receiver gets a copy and a payload
that would not survive the network fails here too, with
``wamp.error.invalid_payload``. Without a codec, args and kwargs are passed
as shallow copies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import ApplicationError

if TYPE_CHECKING:
    from hedgerow.transports._serializers import Serializer

__all__ = ["decode", "encode", "transfer"]


def encode(codec: Serializer | None, args: list[Any], kwargs: dict[str, Any]) -> bytes | None:
    """The payload as the sender's `codec` sends it; None without a codec."""
    if codec is None:
        return None
    try:
        return codec.serialize([list(args), dict(kwargs)])
    except Exception as exc:
        msg = f"payload could not be serialized with {codec.name}: {exc}"
        raise ApplicationError(ApplicationError.INVALID_PAYLOAD, msg) from exc


def decode(
    codec: Serializer | None, other: Serializer | None, data: bytes
) -> tuple[list[Any], dict[str, Any]]:
    """What a receiver with codec `other` gets of `data`, encoded with `codec`."""
    assert codec is not None
    payload = codec.unserialize(data)
    if other is not None and other is not codec:
        try:
            payload = other.roundtrip(payload)
        except Exception as exc:
            msg = f"payload could not be serialized with {other.name}: {exc}"
            raise ApplicationError(ApplicationError.INVALID_PAYLOAD, msg) from exc
    return payload[0], payload[1]


def transfer(
    sender: Serializer | None, receiver: Serializer | None, args: Any, kwargs: Any
) -> tuple[list[Any], dict[str, Any]]:
    """What a receiver (codec `receiver`) gets of a payload a sender (codec `sender`)
    sends (a copy, when serializing)."""
    args = list(args) if args else []
    kwargs = dict(kwargs) if kwargs else {}
    if sender is None:
        return args, kwargs
    data = encode(sender, args, kwargs)
    assert data is not None
    return decode(sender, receiver, data)
