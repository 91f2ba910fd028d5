"""URLs used by view-level cache tests."""

urlpatterns: list = []  # type: ignore[type-arg]
