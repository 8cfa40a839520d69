"""Stand-ins for Shopify, Business Central and a 3PL, with fault injection."""
