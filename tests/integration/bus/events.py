"""A minimal test event, `retail.bustest.v1.ThingHappened`, registered in the default descriptor pool.

Built at import time instead of generated, so bus tests do not depend on the contexts' protos.
"""

from __future__ import annotations

from buf.validate import validate_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from libs.bus.streams import StreamSpec
from retail.common.v1 import common_pb2

FILE = "retail/bustest/v1/bustest.proto"
PACKAGE = "retail.bustest.v1"
_F = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(
        name=FILE,
        package=PACKAGE,
        syntax="proto3",
        dependency=[common_pb2.DESCRIPTOR.name, validate_pb2.DESCRIPTOR.name],
    )
    message = fdp.message_type.add(name="ThingHappened")
    meta = message.field.add(
        name="meta",
        number=1,
        type=_F.TYPE_MESSAGE,
        label=_F.LABEL_OPTIONAL,
        type_name=".retail.common.v1.EventMeta",
    )
    meta.options.Extensions[validate_pb2.field].required = True
    thing = message.field.add(name="thing_id", number=2, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    thing.options.Extensions[validate_pb2.field].string.min_len = 1
    message.field.add(name="email", number=3, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    return fdp


_pool = descriptor_pool.Default()
try:
    _pool.FindFileByName(FILE)
except KeyError:
    _pool.Add(_file())

ThingHappened = message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{PACKAGE}.ThingHappened"))
SUBJECT = f"{PACKAGE}.ThingHappened"
TEST_STREAM = StreamSpec(name="BUSTEST", subjects=(f"{PACKAGE}.>",))
