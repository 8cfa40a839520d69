"""Developer and operator tools: code generation, the `retail-mesh` command, the local supervisor."""
