"""Site tests: the guides' snippets and the reference site, through the test client and a real
headless Chromium.
"""
