"""gRPC servicers of the erp-adapter service: the only place protobuf meets its domain."""
