"""One deployable per domain or adapter; a process each."""
