"""Command-line interface. Commands only parse arguments, call the library layers, and print."""
