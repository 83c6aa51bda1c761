"""The route table, built from the google.api.http annotations of the compiled protos."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType

from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor, message, message_factory
from google.protobuf.descriptor import FieldDescriptor

from services.gateway.fields import FieldError, is_map, resolve_path
from services.gateway.pattern import PathTemplate, parse_template

# Over REST every write is an admin operation (docs/architecture.md, the gateway): any route
# whose HTTP method is not GET needs the admin token, except these RPCs, which
# are reads that take their input in a POST body.
READS_OVER_POST: dict[str, str] = {
    "marketcache.v1.CacheService.MGet": "reads many keys; POST only because the keys go in a body",
}


def is_admin(http_method: str, rpc_full_name: str) -> bool:
    """Whether a route needs `Authorization: Bearer <ADMIN_TOKEN>` at the gateway."""
    return http_method != "GET" and rpc_full_name not in READS_OVER_POST


# HEAD is answered by the GET route of the same path (RFC 9110: same status and
# headers, no body); the RPC runs, since a GET route is a read.
HEAD_GET = ("HEAD", "GET")


class RouteTableError(ValueError):
    """An annotation cannot be served (bad template, unknown field)."""


@dataclass(frozen=True)
class Rpc:
    """One unary RPC: its gRPC path and message classes."""

    service: str
    name: str
    input: descriptor.Descriptor
    output: descriptor.Descriptor
    request_class: type[message.Message]
    response_class: type[message.Message]

    @property
    def full_name(self) -> str:
        return f"{self.service}.{self.name}"

    @property
    def grpc_path(self) -> str:
        return f"/{self.service}/{self.name}"


@dataclass(frozen=True)
class Route:
    """One HTTP binding of an RPC."""

    http_method: str
    template: PathTemplate
    rpc: Rpc
    body: str  # "" (no body), "*" (the whole request) or a top-level field name
    response_body: str  # "" (the whole response) or a top-level field name
    admin: bool
    binding: int  # 0 for the rule itself, n for its n-th additional binding
    path_fields: tuple[tuple[str, tuple[FieldDescriptor, ...]], ...]

    @property
    def operation_id(self) -> str:
        base = f"{self.rpc.service.rpartition('.')[2]}_{self.rpc.name}"
        return f"{base}_{self.binding}" if self.binding else base

    def body_field(self) -> FieldDescriptor | None:
        if self.body in ("", "*"):
            return None
        return self.rpc.input.fields_by_name[self.body]


@dataclass(frozen=True)
class Match:
    """A route and the raw text of its path parameters."""

    route: Route
    params: dict[str, str]


class NoRouteError(LookupError):
    """No route has this path (404)."""


class MethodNotAllowedError(LookupError):
    """Routes have this path, but not for this method (405)."""

    def __init__(self, allowed: Sequence[str]) -> None:
        super().__init__(f"allowed: {', '.join(allowed)}")
        self.allowed = tuple(allowed)


class Router:
    """Matches (method, raw path) to the most specific route: a literal beats `{param}`."""

    def __init__(self, routes: Iterable[Route]) -> None:
        # Sorted once by specificity, so the first match is the best one.
        self.routes = sorted(routes, key=lambda r: r.template.specificity)
        # Only templates with as many segments as the path (or ending in **) can match it.
        self._by_length: dict[int, list[Route]] = {}
        deep = [r for r in self.routes if r.template.deep]
        for route in self.routes:
            if not route.template.deep:
                self._by_length.setdefault(len(route.template.segments), []).append(route)
        self._deep = deep

    def resolve(self, http_method: str, raw_path: str) -> Match:
        """The matching route; NoRouteError, MethodNotAllowedError or PathError otherwise."""
        if len(raw_path) > 1 and raw_path.endswith("/"):
            raw_path = raw_path[:-1]  # one trailing slash is tolerated
        allowed: list[str] = []
        candidates = self._by_length.get(raw_path.count("/"), [])
        if self._deep:
            candidates = sorted([*candidates, *self._deep], key=lambda r: r.template.specificity)
        for route in candidates:
            params = route.template.match(raw_path)
            if params is None:
                continue
            if route.http_method == http_method or (http_method, route.http_method) == HEAD_GET:
                return Match(route, params)
            if route.http_method not in allowed:
                allowed.append(route.http_method)
        if allowed:
            if "GET" in allowed:
                allowed.append("HEAD")
            raise MethodNotAllowedError(sorted(allowed))
        raise NoRouteError(raw_path)


def api_modules(package: str = "marketcache.v1") -> list[ModuleType]:
    """Import every generated `*_pb2` module of the package, registering its file descriptor."""
    pkg = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.endswith("_pb2"))
    return [importlib.import_module(f"{package}.{name}") for name in names]


def api_services(package: str = "marketcache.v1") -> list[descriptor.ServiceDescriptor]:
    """Every service declared by the package's protos, in a stable order."""
    services: list[descriptor.ServiceDescriptor] = []
    for module in api_modules(package):
        file_desc: descriptor.FileDescriptor = module.DESCRIPTOR
        services.extend(file_desc.services_by_name[name] for name in file_desc.services_by_name)
    return services


def http_rules(method: descriptor.MethodDescriptor) -> list[http_pb2.HttpRule]:
    """The method's google.api.http rule followed by its additional bindings (may be empty)."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    return [rule, *rule.additional_bindings]


def build_routes(services: Iterable[descriptor.ServiceDescriptor]) -> list[Route]:
    """One Route per HTTP binding of every annotated unary method."""
    routes: list[Route] = []
    for service in services:
        for method in service.methods:
            rules = http_rules(method)
            if not rules:
                continue
            if method.client_streaming or method.server_streaming:
                raise RouteTableError(f"{method.full_name}: only unary RPCs can be transcoded")
            rpc = Rpc(
                service=service.full_name,
                name=method.name,
                input=method.input_type,
                output=method.output_type,
                request_class=message_factory.GetMessageClass(method.input_type),
                response_class=message_factory.GetMessageClass(method.output_type),
            )
            for index, rule in enumerate(rules):
                routes.append(_route(rpc, rule, index))
    _check_unique(routes)
    return routes


def _route(rpc: Rpc, rule: http_pb2.HttpRule, binding: int) -> Route:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise RouteTableError(f"{rpc.full_name}: google.api.http rule without a pattern")
    if kind == "custom":
        http_method, path = rule.custom.kind.upper(), rule.custom.path
    else:
        http_method, path = kind.upper(), getattr(rule, kind)
    where = f"{rpc.full_name} ({http_method} {path})"
    try:
        template = parse_template(path)
    except ValueError as exc:
        raise RouteTableError(f"{where}: {exc}") from None
    path_fields: list[tuple[str, tuple[FieldDescriptor, ...]]] = []
    for field_path in template.field_paths:
        try:
            chain = resolve_path(rpc.input, field_path)
        except FieldError as exc:
            raise RouteTableError(f"{where}: {exc}") from None
        if chain[-1].is_repeated or is_map(chain[-1]):
            raise RouteTableError(f"{where}: path field {field_path!r} is repeated")
        path_fields.append((field_path, tuple(chain)))
    _check_top_field(where, "body", rule.body, rpc.input)
    _check_top_field(where, "response_body", rule.response_body, rpc.output)
    return Route(
        http_method=http_method,
        template=template,
        rpc=rpc,
        body=rule.body,
        response_body=rule.response_body,
        admin=is_admin(http_method, rpc.full_name),
        binding=binding,
        path_fields=tuple(path_fields),
    )


def _check_top_field(where: str, what: str, name: str, desc: descriptor.Descriptor) -> None:
    if name in ("", "*") or name in desc.fields_by_name:
        return
    raise RouteTableError(f"{where}: {what} names no field of {desc.full_name}: {name!r}")


def _check_unique(routes: Sequence[Route]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for route in routes:
        key = (route.http_method, route.template.openapi_path())
        if key in seen:
            raise RouteTableError(
                f"{route.http_method} {route.template.template} is bound twice: "
                f"{seen[key]} and {route.rpc.full_name}"
            )
        seen[key] = route.rpc.full_name
