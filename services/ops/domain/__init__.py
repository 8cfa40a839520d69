"""The ops service's pure rules: business exceptions and how they open, recur, clear and resolve."""
