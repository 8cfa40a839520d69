"""gRPC servicers of the shipments service: the only place protobuf meets its domain."""
