"""Layer 1, configuration: settings parsed once into typed server descriptions.

Imports nothing else of djredis. Every LOCATION form and OPTION is read here and is either
honoured or rejected with ``ImproperlyConfigured``.
"""
