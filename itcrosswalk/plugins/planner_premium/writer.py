"""Plans created through the Schedule API (placeholder until the writer lands)."""
