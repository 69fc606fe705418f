"""Adapters for public datasets (read from installed packages or registry wheels, never copied in)."""
