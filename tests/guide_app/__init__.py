"""Views, URLs and templates reproducing the guides' caching snippets (tests/test_guides.py)."""
