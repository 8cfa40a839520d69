"""gRPC servicers of the ops service: the only place protobuf meets its domain."""
