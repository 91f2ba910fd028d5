"""djredis management commands."""
