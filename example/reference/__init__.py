"""The djredis reference site: small pages that show each caching feature at work."""
