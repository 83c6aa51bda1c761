"""Server reflection under both names today's tools ask for: grpc.reflection.v1 and v1alpha.

grpcurl 1.9+, grpcui and Postman ask for `grpc.reflection.v1` first; older
tools only know `v1alpha`. grpcio-reflection (up to at least 1.85) ships only
v1alpha. The v1 protocol is v1alpha promoted unchanged (same messages, same
field numbers, only the package renamed), so one servicer answers both: the v1
method decodes and encodes with the v1alpha classes, whose bytes are identical.
The v1 file descriptor is registered too, so `grpcurl describe` of the v1
service works.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection as v1alpha
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE = v1alpha.SERVICE_NAME  # "grpc.reflection.v1alpha.ServerReflection"
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"
_METHOD = "ServerReflectionInfo"


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection v1 and v1alpha on `server`, listing `service_names` and both itself."""
    v1_file_descriptor()
    names = [*service_names, V1_SERVICE, V1ALPHA_SERVICE]
    servicer = v1alpha.aio.ReflectionServicer(names)  # type: ignore[attr-defined]
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE, {_METHOD: handler}),)
    )


def v1_file_descriptor() -> descriptor.FileDescriptor:
    """`grpc/reflection/v1/reflection.proto` in the default pool (built from v1alpha once)."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindFileByName(V1_FILE)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old_package = proto.package
    proto.name = V1_FILE
    proto.package = V1_PACKAGE
    proto.ClearField("options")  # v1alpha's file options (deprecation, Java package) are its own

    def rename(type_name: str) -> str:
        old = f".{old_package}."
        return f".{V1_PACKAGE}." + type_name[len(old) :] if type_name.startswith(old) else type_name

    for message_type in proto.message_type:
        for field in message_type.field:
            if field.type_name:
                field.type_name = rename(field.type_name)
    for service in proto.service:
        for method in service.method:
            method.input_type = rename(method.input_type)
            method.output_type = rename(method.output_type)
    pool.Add(proto)
    return pool.FindFileByName(V1_FILE)
