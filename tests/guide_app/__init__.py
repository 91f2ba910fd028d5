"""Views, URLs and templates reproducing the guides' caching snippets (tests/site)."""
