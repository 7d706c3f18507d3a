"""The `kumo` operator command."""
