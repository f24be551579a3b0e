"""A minimal Faust app for the round-trip test: forwards every record, key kept, to an output topic.

Run as a real worker process: ``python tests/integration/roundtrip_app.py worker``; the broker
and topic names come from the environment.
"""

from __future__ import annotations

import os

import faust

app = faust.App(
    os.environ["ROUNDTRIP_APP_ID"],
    broker=f"kafka://{os.environ['ROUNDTRIP_BOOTSTRAP']}",
    topic_replication_factor=1,
    topic_partitions=4,
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
    datadir=os.environ["ROUNDTRIP_DATADIR"],
    stream_wait_empty=False,
)
source = app.topic(os.environ["ROUNDTRIP_IN"], key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["ROUNDTRIP_OUT"], key_serializer="raw", value_serializer="raw")


@app.agent(source)
async def forward(stream: faust.StreamT) -> None:
    async for key, value in stream.items():
        await sink.send(key=key, value=value)


if __name__ == "__main__":
    app.main()
