"""Views and URLs for the session tests: the guides' session views, and login/logout."""
