"""The 3PL's webhooks: the HTTP listener, signature check, durable inbox and its processor."""
