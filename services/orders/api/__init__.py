"""gRPC servicers of the orders service: the only place protobuf meets its domain."""
