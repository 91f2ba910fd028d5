"""Django management commands of djredis (add "djredis" to INSTALLED_APPS)."""
