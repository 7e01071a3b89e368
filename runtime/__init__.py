"""What the read models and the service modules share about the Python process they run in.

Imports the standard library only, so that both may import it without importing each
other (docs/development/architecture.md).
"""
