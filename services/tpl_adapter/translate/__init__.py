"""Pure translation between the 3PL's payloads (ShipBob-like JSON, EDI X12) and canonical protos."""
