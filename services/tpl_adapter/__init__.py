"""The tpl-adapter service. See README.md."""
