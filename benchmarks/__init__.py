"""Performance benchmarks; each prints its figures, the baseline and the command that gives them."""
