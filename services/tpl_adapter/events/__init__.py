"""Subscriptions of the tpl-adapter: warehouse releases, cancellations and address corrections."""
