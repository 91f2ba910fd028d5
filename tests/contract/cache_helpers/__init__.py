"""memoize, stampede protection and signed values, on a real Redis."""
