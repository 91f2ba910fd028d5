"""The reference site's pages, one module per section of the guides."""
