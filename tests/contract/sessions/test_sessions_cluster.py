"""The session engine on Redis Cluster: every operation and the per-user index work."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.slow
def test_sessions_and_their_index_work_on_redis_cluster(
    settings: Any, cluster_topology: Any
) -> None:
    settings.SESSION_REDIS = {
        "location": cluster_topology.location,
        "options": cluster_topology.options,
    }
    settings.SESSION_ENGINE = "djredis.sessions"
    from djredis import sessions

    store = sessions.SessionStore()
    store["_auth_user_id"] = "7"
    store["x"] = 1
    store.save()
    again = sessions.SessionStore(store.session_key)
    assert again["x"] == 1
    assert len(sessions.user_sessions("7")) == 1
    again["x"] = 2
    again.save()
    assert sessions.SessionStore(store.session_key)["x"] == 2
    assert sessions.revoke_all_sessions("7") == 1
    assert not sessions.SessionStore().exists(store.session_key)
    assert list(sessions.user_sessions("7")) == []
