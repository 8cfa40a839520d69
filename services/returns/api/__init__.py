"""gRPC servicers of the returns service: the only place protobuf meets its domain."""
