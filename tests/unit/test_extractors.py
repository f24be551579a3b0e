"""Extractor augmentation: Java CICFlowMeter rows as the Python cicflowmeter writes them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.extractors import AUGMENTATIONS, as_python_cicflowmeter
from model.train import augment_extractors
from stream_ids.datasets import shared_data_dir
from stream_ids.errors import SchemaError
from stream_ids.layouts import PYTHON_CICFLOWMETER
from stream_ids.loader import load_flows
from stream_ids.transform import PROTOCOL_SLOTS, protocol_one_hot


@pytest.fixture(scope="module")
def benign() -> pd.DataFrame:
    frame = load_flows([shared_data_dir() / "cicids2017-improved" / "BENIGN.csv"])
    return frame.iloc[:3000].reset_index(drop=True)


def test_a_dns_query_gains_the_frame_headers(benign: pd.DataFrame) -> None:
    # One UDP packet each way: the Python package counts Ethernet (14) + IPv4 (20) + UDP (8)
    # on top of the payload, and writes IP header bytes where Java writes UDP header bytes.
    rows = benign[
        (benign.protocol == 17) & (benign.total_fwd_packets == 1) & (benign.total_bwd_packets == 1)
    ]
    assert len(rows) > 10
    out = as_python_cicflowmeter(rows)
    overhead = 14 + 20 + 8
    np.testing.assert_allclose(out.fwd_packet_length_max, rows.fwd_packet_length_max + overhead)
    np.testing.assert_allclose(
        out.total_length_bwd_packets, rows.total_length_bwd_packets + overhead
    )
    np.testing.assert_allclose(out.fwd_header_length, 20.0)
    np.testing.assert_allclose(out.fwd_seg_size_min, 20.0)
    np.testing.assert_allclose(
        out.packet_length_min,
        np.minimum(rows.fwd_packet_length_min, rows.bwd_packet_length_min) + overhead,
    )


def test_tcp_rows_keep_their_shape(benign: pd.DataFrame) -> None:
    rows = benign[(benign.protocol == 6) & (benign.total_fwd_packets > 2)]
    out = as_python_cicflowmeter(rows)
    packets = rows.total_fwd_packets + rows.total_bwd_packets
    # Every packet carries at least Ethernet + IPv4 + a 20-byte TCP header.
    assert (out.packet_length_min >= 54).all()
    np.testing.assert_allclose(
        out.packet_length_mean * packets,
        out.total_length_fwd_packets + out.total_length_bwd_packets,
        rtol=1e-5,
    )
    # Spread is untouched (a constant per packet), counts and times too.
    np.testing.assert_allclose(out.fwd_packet_length_std, rows.fwd_packet_length_std)
    np.testing.assert_allclose(out.flow_duration, rows.flow_duration)
    assert (out.flow_bytes_per_s >= rows.flow_bytes_per_s).all()
    # The package's constants: subflows repeat the totals, no active/idle times.
    np.testing.assert_allclose(out.subflow_fwd_packets, rows.total_fwd_packets)
    np.testing.assert_allclose(out.subflow_bwd_bytes, out.total_length_bwd_packets)
    assert (out[["active_mean", "idle_max", "flow_iat_min", "fwd_iat_min"]] == 0).all().all()
    # A pure function: the input is unchanged.
    assert not rows.equals(out)
    assert rows.equals(benign.loc[rows.index])


def test_augmented_copies_follow_their_originals_split(benign: pd.DataFrame) -> None:
    frame = benign.assign(layout="cicids2017-improved")
    idx = {"train": np.arange(0, 2000), "val": np.arange(2000, 2500), "test": np.arange(2500, 3000)}
    out, new_idx = augment_extractors(frame, idx, [PYTHON_CICFLOWMETER])
    assert len(out) == 2 * len(frame)
    np.testing.assert_array_equal(new_idx["test"], idx["test"])  # originals only
    np.testing.assert_array_equal(new_idx["train"], np.r_[idx["train"], idx["train"] + 3000])
    assert (out.layout.iloc[3000:] == PYTHON_CICFLOWMETER).all()
    assert (out.is_attack.iloc[3000:].to_numpy() == frame.is_attack.to_numpy()).all()
    with pytest.raises(SchemaError, match="unknown extractor augmentation"):
        augment_extractors(frame, idx, ["nprobe"])
    assert set(AUGMENTATIONS) == {PYTHON_CICFLOWMETER, "java-versions"}


def test_an_ethertype_in_the_protocol_column_is_an_unknown_transport() -> None:
    # 2048 (0x0800) is what the Python package writes for Linux cooked captures.
    hot = protocol_one_hot(np.array([6, 17, 1, 2048, 34525, np.nan, 6.5]))
    slots = [PROTOCOL_SLOTS[i] for i in hot.argmax(axis=1)]
    assert slots == ["tcp", "udp", "other", "unknown", "unknown", "unknown", "unknown"]
    assert (hot.sum(axis=1) == 1).all()


def test_rows_the_python_package_wrote_are_not_copied(benign: pd.DataFrame) -> None:
    # --benign captures come through the Python package already; writing them "as the Python
    # package would" a second time would add frame headers twice.
    frame = benign.iloc[:100].copy()
    frame["layout"] = ["cicids2017-improved"] * 60 + [PYTHON_CICFLOWMETER] * 40
    idx = {"train": np.arange(0, 100, 2), "val": np.arange(1, 100, 4), "test": np.arange(3, 100, 4)}
    out, new_idx = augment_extractors(frame, idx, [PYTHON_CICFLOWMETER, "java-versions"])
    assert len(out) == 100 + 60 + 60
    copies = out.iloc[100:]
    np.testing.assert_allclose(
        copies.fwd_packet_length_max.iloc[:60].to_numpy(),
        as_python_cicflowmeter(frame.iloc[:60]).fwd_packet_length_max.to_numpy(),
    )
    # Train rows among the first 60 are copied once per augmentation, the rest are not.
    java_train = idx["train"][idx["train"] < 60]
    np.testing.assert_array_equal(
        new_idx["train"], np.r_[idx["train"], java_train + 100, java_train + 160]
    )
    np.testing.assert_array_equal(new_idx["test"], idx["test"])
