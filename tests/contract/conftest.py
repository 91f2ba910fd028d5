"""Contract tests: Django's cache and session contracts, and django-redis's, on real Redis
(standalone; with ``pytestmark = pytest.mark.topologies`` on every topology).
"""
