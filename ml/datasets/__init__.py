"""Adapters for public datasets (read from installed packages or registry wheels or source archives, never copied in)."""
