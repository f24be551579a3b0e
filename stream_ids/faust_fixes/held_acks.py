"""Events held back from Faust's ack until their outcomes are published.

Works around Faust acking a ``take_events`` batch in a ``finally``, which Faust also runs when
it stops the stream, possibly while the batch is still being scored: that committed flows that
never got a verdict (a graceful scale-in lost 243 flows). Upstream: acks are not under the
agent's control on a stop or a rebalance (faust-streaming/faust#189 "Behaviour of noack() -
events always being acknowledged"; robinhood/faust#604). Delete this module once an event
can be kept unacked through a stop.

Private attribute written: ``Message.acked`` (checked at start-up).
"""

from __future__ import annotations

from typing import Any


def hold_back(events: list[Any]) -> None:
    """Keep ``events`` from being acked until :func:`release`.

    Faust commits an offset once its message is acked; ``Message.ack`` is a no-op for a message
    already marked acked, so marking it here means the ``stream.take_events`` loop, which acks
    every event of a batch when the batch is done *or abandoned*, never hands it to the
    consumer's commit. (With ``stream_wait_empty`` off, nothing waits for such messages.)
    """
    for event in events:
        event.message.acked = True


def release(events: list[Any]) -> None:
    """Undo :func:`hold_back`: the ``take_events`` loop's ack counts again."""
    for event in events:
        event.message.acked = False
