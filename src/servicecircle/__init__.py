"""servicecircle."""
