"""A Business Central (API v2.0) stand-in: OAuth2 client credentials, OData entities, posting, faults."""
