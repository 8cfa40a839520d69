"""gRPC servicers of the catalog service: the only place protobuf meets its domain."""
