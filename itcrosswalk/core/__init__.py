"""The core: common model, configuration, HTTP policy, store and sync engine. Knows no plugin."""
