"""Pure translation between Business Central API v2.0 payloads and the canonical protos."""
