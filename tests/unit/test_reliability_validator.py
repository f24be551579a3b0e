"""Property test of the record validator and the scoring agent's batch split (no broker).

Whatever bytes arrive on ``flows`` (random bytes, random JSON, good records with one field
replaced by random JSON or removed, schema-2 batches of such records), every flow a message
carries ends as exactly one verdict or exactly one dead-letter record with a known reason, and
nothing raises. The integration twin (real worker, real broker) is
``tests/integration/test_reliability_fuzz.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streaming_fakes import FakeModel, event, fake_topics, flow

from stream_ids.agents.scoring import BatchScorer
from stream_ids.records import REASONS, parse_message
from stream_ids.rolling import RollingStats
from stream_ids.schema import FEATURE_NAMES

KEY = b"10.0.0.1"
FIELDS = ["schema", "flow_id", "src_ip", "src_port", "dst_ip", "dst_port", "protocol",
          "timestamp", "produced_at", "label", "features"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "", "10.0.0.1", "1e999"])
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_flow(draw: Any) -> dict[str, Any]:
    """A good schema-1 flow with 0-3 fields or features replaced by random JSON or removed."""
    obj = flow(flow_id=f"f{draw(st.integers(0, 10**6))}", src_ip=KEY.decode())
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            name = draw(st.sampled_from(FIELDS))
            target = obj
        else:
            name = draw(st.sampled_from(FEATURE_NAMES))
            target = obj["features"] if isinstance(obj.get("features"), dict) else obj
        if draw(st.integers(0, 4)) == 0:
            target.pop(name, None)
        else:
            target[name] = draw(json_values)
    return obj


@st.composite
def message_values(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "flow", "batch"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return orjson.dumps(draw(json_values))
    if kind == "flow":
        return orjson.dumps(draw(mutated_flow()), option=orjson.OPT_NON_STR_KEYS)
    elements = draw(st.lists(mutated_flow() | json_values, max_size=5))
    for element in elements:
        if isinstance(element, dict):
            element.pop("schema", None)
    batch: dict[str, Any] = {"schema": 2, "src_ip": KEY.decode(), "flows": elements}
    if draw(st.integers(0, 5)) == 0:
        batch[draw(st.sampled_from(["schema", "src_ip", "flows"]))] = draw(json_values)
    return orjson.dumps(batch, option=orjson.OPT_NON_STR_KEYS)


def _carried(value: bytes, key: bytes | None, agent: bool = True) -> int:
    """How many flows the message carries: a well-formed schema-2 batch its elements (at least
    one outcome even when empty), anything else one. The agent rejects a keyless message as a
    whole; ``parse_message`` alone accepts a missing key."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return 1
    if (
        isinstance(obj, dict)
        and obj.get("schema") == 2
        and not isinstance(obj.get("schema"), bool)
        and isinstance(obj.get("flows"), list)
        and isinstance(obj.get("src_ip"), str)
        and obj["src_ip"]
        and (key == obj["src_ip"].encode() or (key is None and not agent))
    ):
        return max(1, len(obj["flows"]))
    return 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(message_values(), st.sampled_from([KEY, b"10.9.9.9", None, b"\xff"])),
                min_size=1, max_size=8))
def test_every_flow_ends_as_one_verdict_or_one_dead_letter(messages: list) -> None:
    topics = fake_topics()
    scorer = BatchScorer(FakeModel(), {}, topics, RollingStats("w"))
    events = [event(value, key, offset=i) for i, (value, key) in enumerate(messages)]
    asyncio.run(scorer.process(events))
    verdicts = [v for _, v in topics.verdicts.sent]
    dead = [v for _, v in topics.dead_letter.sent]
    expected = sum(_carried(value, key) for value, key in messages)
    assert len(verdicts) + len(dead) == expected
    assert {d["reason"] for d in dead} <= set(REASONS)
    # dead letters point back at their message; verdict scores are finite numbers in [0, 1]
    assert all(0 <= d["offset"] < len(messages) for d in dead)
    assert all(0.0 <= v["score"] <= 1.0 for v in verdicts)


@settings(max_examples=1500, deadline=None)
@given(message_values(), st.sampled_from([KEY, None, b"\xfe"]))
def test_parse_message_never_raises_and_sets_exactly_one(value: bytes, key: bytes | None) -> None:
    results = parse_message(value, key)
    assert len(results) == _carried(value, key, agent=False)
    for parsed, error, _raw in results:
        assert (parsed is None) != (error is None)
        if error is not None:
            assert error.reason in REASONS
