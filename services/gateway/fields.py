"""Setting protobuf fields from text (path and query parameters), by dotted field path."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Sequence

from google.protobuf import descriptor, message
from google.protobuf.descriptor import FieldDescriptor

_T = FieldDescriptor

_INT_RANGES: dict[int, tuple[int, int]] = {
    _T.TYPE_INT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _T.TYPE_UINT32: (0, 2**32 - 1),
    _T.TYPE_FIXED32: (0, 2**32 - 1),
    _T.TYPE_INT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _T.TYPE_UINT64: (0, 2**64 - 1),
    _T.TYPE_FIXED64: (0, 2**64 - 1),
}
_FLOATS = {_T.TYPE_DOUBLE, _T.TYPE_FLOAT}
_FLOAT32_MAX = 3.4028234663852886e38

# Well-known messages a single text value can fill, as grpc-gateway allows in queries.
_WRAPPERS = {
    "google.protobuf.DoubleValue": _T.TYPE_DOUBLE,
    "google.protobuf.FloatValue": _T.TYPE_FLOAT,
    "google.protobuf.Int64Value": _T.TYPE_INT64,
    "google.protobuf.UInt64Value": _T.TYPE_UINT64,
    "google.protobuf.Int32Value": _T.TYPE_INT32,
    "google.protobuf.UInt32Value": _T.TYPE_UINT32,
    "google.protobuf.BoolValue": _T.TYPE_BOOL,
    "google.protobuf.StringValue": _T.TYPE_STRING,
}
TEXT_MESSAGES = {
    *_WRAPPERS,
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
}


class FieldError(ValueError):
    """A parameter names no field, or its text does not fit the field's type."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def find_field(desc: descriptor.Descriptor, name: str) -> FieldDescriptor | None:
    """The field called `name` (proto name or lowerCamelCase JSON name), or None."""
    field = desc.fields_by_name.get(name)
    if field is not None:
        return field
    for candidate in desc.fields:
        if candidate.json_name == name:
            return candidate
    return None


def resolve_path(desc: descriptor.Descriptor, path: str) -> list[FieldDescriptor]:
    """The chain of fields a dotted path walks through; FieldError when it names none."""
    chain: list[FieldDescriptor] = []
    current: descriptor.Descriptor | None = desc
    for index, name in enumerate(path.split(".")):
        if current is None:
            walked = ".".join(path.split(".")[:index])
            raise FieldError(path, f"{walked!r} is not a message, so {path!r} names no field")
        field = find_field(current, name)
        if field is None:
            raise FieldError(path, f"{current.name} has no field {name!r}")
        chain.append(field)
        last = index == len(path.split(".")) - 1
        if not last and (field.is_repeated or is_map(field)):
            raise FieldError(path, f"{field.name!r} is repeated; it cannot be set by a dotted name")
        is_text_message = field.message_type is not None and is_text_message_type(field)
        current = field.message_type if field.message_type and not is_text_message else None
    return chain


def is_map(field: FieldDescriptor) -> bool:
    """Whether the field is a proto map (a repeated map-entry message)."""
    return bool(
        field.is_repeated
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def map_value_field(field: FieldDescriptor) -> FieldDescriptor:
    """The `value` field of a map field's entry message."""
    assert field.message_type is not None
    return field.message_type.fields_by_name["value"]


def is_text_message_type(field: FieldDescriptor) -> bool:
    """Whether the field's message type can be written as one text value."""
    return field.message_type is not None and field.message_type.full_name in TEXT_MESSAGES


def dotted(chain: Sequence[FieldDescriptor], json_names: bool = True) -> str:
    """The dotted name of a field chain, in JSON (camelCase) or proto spelling."""
    return ".".join(f.json_name if json_names else f.name for f in chain)


def set_path(msg: message.Message, chain: Sequence[FieldDescriptor], texts: Sequence[str]) -> None:
    """Set the field at the end of `chain` from text values (several only for repeated fields)."""
    target = msg
    for field in chain[:-1]:
        target = getattr(target, field.name)
    leaf = chain[-1]
    name = dotted(chain)
    if is_map(leaf):
        raise FieldError(name, f"{name!r} is a map; send it in the JSON body")
    if leaf.is_repeated:
        container = getattr(target, leaf.name)
        del container[:]
        for text in texts:
            if leaf.message_type is not None:
                _fill_message(container.add(), leaf, text, name)
            else:
                container.append(convert_scalar(leaf, text, name))
        return
    if len(texts) != 1:
        raise FieldError(name, f"{name!r} takes one value, got {len(texts)}")
    if leaf.message_type is not None:
        _fill_message(getattr(target, leaf.name), leaf, texts[0], name)
        return
    try:
        setattr(target, leaf.name, convert_scalar(leaf, texts[0], name))
    except (TypeError, ValueError) as exc:
        raise FieldError(name, f"{name!r}: {exc}") from None


def convert_scalar(field: FieldDescriptor, text: str, name: str) -> object:
    """Convert one text value to the Python value of a scalar or enum field."""
    kind = field.type
    if kind == _T.TYPE_STRING:
        return text
    if kind == _T.TYPE_BOOL:
        lowered = text.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise FieldError(name, f"{name!r} is a boolean: expected true or false, got {text!r}")
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        try:
            number = int(text, 10)
        except ValueError:
            raise FieldError(name, f"{name!r} is an integer, got {text!r}") from None
        if not low <= number <= high:
            raise FieldError(name, f"{name!r} must be between {low} and {high}, got {number}")
        return number
    if kind in _FLOATS:
        return _float(text, name, kind)
    if kind == _T.TYPE_ENUM:
        return _enum(field, text, name)
    if kind == _T.TYPE_BYTES:
        return _bytes(text, name)
    raise FieldError(name, f"{name!r} cannot be set from a query parameter")  # pragma: no cover


def _float(text: str, name: str, kind: int) -> float:
    special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
    if text in special:
        return special[text]
    try:
        number = float(text)
    except ValueError:
        raise FieldError(name, f"{name!r} is a number, got {text!r}") from None
    if not math.isfinite(number) or (kind == _T.TYPE_FLOAT and abs(number) > _FLOAT32_MAX):
        raise FieldError(name, f"{name!r} is out of range: {text!r}")
    return number


def _enum(field: FieldDescriptor, text: str, name: str) -> int:
    enum = field.enum_type
    assert enum is not None
    value = enum.values_by_name.get(text)
    if value is not None:
        return int(value.number)
    try:
        number = int(text)
    except ValueError:
        number = None
    if number is not None and number in enum.values_by_number:
        return number
    choices = ", ".join(v.name for v in enum.values)
    raise FieldError(name, f"{name!r} must be one of {choices}, got {text!r}")


def _bytes(text: str, name: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        raise FieldError(name, f"{name!r} is bytes: expected base64, got {text!r}") from None


def _fill_message(target: message.Message, field: FieldDescriptor, text: str, name: str) -> None:
    full_name = field.message_type.full_name if field.message_type else ""
    if full_name in _WRAPPERS:
        fake = _ScalarField(_WRAPPERS[full_name])
        target.value = convert_scalar(fake, text, name)  # type: ignore[attr-defined, arg-type]
        return
    if full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        try:
            target.FromJsonString(text)  # type: ignore[attr-defined]
        except ValueError as exc:
            raise FieldError(name, f"{name!r}: {exc}") from None
        return
    if full_name == "google.protobuf.FieldMask":
        target.paths.extend(p for p in text.split(",") if p)  # type: ignore[attr-defined]
        return
    raise FieldError(name, f"{name!r} is a message; set its fields with dotted names")


class _ScalarField:
    """Just enough of a FieldDescriptor for convert_scalar on a wrapper's value."""

    def __init__(self, kind: int) -> None:
        self.type = kind
        self.enum_type = None
