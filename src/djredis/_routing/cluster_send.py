"""Send one round of a Redis Cluster command's parts to their nodes, for ``cluster.py``.

Every node's parts are written before any reply is read (one round trip in parallel, not
one per node). Each node's share is observed as one command (``djredis._core.observe``),
and its span ends however the round ends: with the node's connection error, or, when the
round is interrupted (a cancelled task, an exception raised by a signal handler), with
that exception for every node that had not answered yet.
"""

from __future__ import annotations

import asyncio
from typing import Any

from djredis._core.errors import CONNECTION_ERRORS
from djredis._io.loops import LoopState
from djredis._io.pool import request_many
from djredis._routing.cluster_plan import (
    Node,
    Part,
    deliver,
    not_sent,
    seen_all_end,
    watch_nodes,
)

__all__ = ["send_round_async", "send_round_sync"]

_Groups = dict[Node, list[Part]]


def send_round_sync(groups: _Groups) -> dict[Node, Exception]:
    """Write every node's commands, then read every reply; return each failed node's
    connection error (the parts of the others have their replies)."""
    watched = watch_nodes(groups)
    try:
        outcomes = request_many(
            {
                node.config: [a for part in parts for a in part.wire()]
                for node, parts in groups.items()
            }
        )
    except BaseException as exc:  # interrupted (a signal's exception): no reply was read
        seen_all_end(watched, exc)
        raise
    failed: dict[Node, Exception] = {}
    for node, parts in groups.items():
        outcome = outcomes[node.config]
        if isinstance(outcome, Exception):
            failed[node] = outcome
        else:
            deliver(parts, outcome)
    for node, seen in watched.items():
        seen.end(failed.get(node))
    return failed


async def send_round_async(groups: _Groups, state: LoopState) -> dict[Node, Exception]:
    """Queue every part on its node's multiplexed connection, then collect the replies;
    return each failed node's connection error."""
    failed: dict[Node, Exception] = {}
    watched = watch_nodes(groups)
    answered: set[Node] = set()
    try:
        await _round_async(groups, state, failed, answered)
    except BaseException as exc:
        # Cancelled (a timeout around the caller) or another error mid-send: every node's
        # span still ends, the unanswered ones with the exception.
        for node, seen in watched.items():
            seen.end(failed.get(node) or (None if node in answered else exc))
        raise
    for node, seen in watched.items():
        seen.end(failed.get(node))
    return failed


async def _round_async(
    groups: _Groups, state: LoopState, failed: dict[Node, Exception], answered: set[Node]
) -> None:
    """``send_round_async``'s work: ``failed`` gets each node's connection error,
    ``answered`` each node whose every reply came back."""
    conns = {node: state.connection(node.config) for node in groups}
    connecting = [node for node, conn in conns.items() if not conn.connected]
    if connecting:
        outcomes = await asyncio.gather(
            *(conns[node].ensure_connected() for node in connecting), return_exceptions=True
        )
        for node, outcome in zip(connecting, outcomes, strict=True):
            if isinstance(outcome, CONNECTION_ERRORS):
                failed[node] = not_sent(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
    sent = [
        (node, parts, conns[node].send_all(a for part in parts for a in part.wire()))
        for node, parts in groups.items()
        if node not in failed
    ]
    for node, parts, futures in sent:
        replies: list[Any] = []
        for future in futures:  # every future is awaited, so no exception goes unretrieved
            try:
                replies.append(await future)
            except CONNECTION_ERRORS as exc:
                failed.setdefault(node, exc)
        if node not in failed:
            deliver(parts, replies)
        answered.add(node)
