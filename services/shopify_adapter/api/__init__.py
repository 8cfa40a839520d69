"""gRPC servicers of the shopify-adapter service: the only place protobuf meets its domain."""
