"""Built-in plugins. Each folder knows only the core, and goes through the same hooks as third-party plugins."""
