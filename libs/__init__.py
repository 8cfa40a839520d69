"""Shared machinery every service uses, one concern per folder."""
