"""Django's own cache backend tests (``BaseCacheTests``), run against djredis.

Nothing from Django is stored here: the harness (``_harness.py``) downloads the Django
sdist matching the installed version at test time and runs its ``tests/runtests.py`` on
two small files of ours, which it copies into the downloaded tree:

- ``djredis_cache_tests.py`` -> ``<django tests>/cache/djredis_cache_tests.py``
- ``django_settings.py``     -> ``<django tests>/djredis_contract_settings.py``

Neither is importable from this repository; they only run inside Django's test tree.
"""
