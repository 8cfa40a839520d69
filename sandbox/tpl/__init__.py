"""The 3PL stand-in: a ShipBob-like JSON API, a warehouse simulation and EDI X12 drop folders."""
