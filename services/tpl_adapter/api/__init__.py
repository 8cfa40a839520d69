"""gRPC servicers of the tpl-adapter service: the only place protobuf meets its domain."""
