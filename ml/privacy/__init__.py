"""Privacy: keyed user pseudonyms shared by dbt and Python."""
