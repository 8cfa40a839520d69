"""Clients of the 3PL: its JSON API over HTTP and its EDI drop folders."""
