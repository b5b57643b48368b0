"""Format converters: one module per format, each declaring a `Format` for the registry."""
