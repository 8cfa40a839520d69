"""Inventory tables and their migrations (branch `inventory`)."""

from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
