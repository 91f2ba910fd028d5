"""cache_page_per_user through the Django test client."""
