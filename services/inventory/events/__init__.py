"""Inventory events: mapping to protobuf and the subscriptions to order and shipment events."""
