"""gRPC servicers of the inventory service: the only place protobuf meets its domain."""
