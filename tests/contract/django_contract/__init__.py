"""Django's own cache backend and session tests, run against djredis.

Nothing from Django is stored here: ``_sources.py`` finds (or downloads) the Django sdist
matching the installed version at test time, and ``_harness.py`` runs its
``tests/runtests.py`` on small files of ours, which it copies into that tree:

- ``djredis_cache_tests.py`` -> ``<django tests>/cache/djredis_cache_tests.py``
- ``django_settings.py``     -> ``<django tests>/djredis_contract_settings.py``

Neither is importable from this repository; they only run inside Django's test tree.
"""
