"""Extractor augmentation: Java CICFlowMeter rows as the Python cicflowmeter writes them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.extractors import AUGMENTATIONS, as_python_cicflowmeter
from model.train import augment_extractors
from stream_ids.datasets import shared_data_dir
from stream_ids.errors import ConfigurationError, SchemaError
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


def test_rescaled_time_scales_times_and_divides_rates(benign: pd.DataFrame) -> None:
    from model.extractors import PER_SECOND_FEATURES, rescale_time
    from stream_ids import schema

    rows = benign.iloc[:50]
    factor = np.linspace(0.1, 10.0, 50)
    out = rescale_time(rows, factor)
    for name in schema.TIME_FEATURES:
        np.testing.assert_allclose(out[name], rows[name] * factor, rtol=1e-6)
    finite = np.isfinite(rows["flow_bytes_per_s"].to_numpy())
    for name in PER_SECOND_FEATURES:
        np.testing.assert_allclose(out[name][finite], (rows[name] / factor)[finite], rtol=1e-6)
    # Counts, sizes and flags are the same exchange, whatever the pace.
    for name in ("total_fwd_packets", "total_length_bwd_packets", "syn_flag_count"):
        np.testing.assert_array_equal(out[name], rows[name])
    assert rows.equals(benign.iloc[:50])  # pure
    with pytest.raises(ValueError, match="finite positive"):
        rescale_time(rows, np.zeros(50))


def test_timescale_factors_are_one_per_host_within_the_spread() -> None:
    from model.extractors import timescale_factors

    keys = pd.Series(["a", "b", "a", None, None, "b"])
    factors = timescale_factors(keys, spread=10.0, seed=3)
    assert factors[0] == factors[2] and factors[1] == factors[5]
    assert factors[3] != factors[4]  # a flow without a host is a host of its own
    assert np.all((factors >= 0.1) & (factors <= 10.0))
    np.testing.assert_array_equal(factors, timescale_factors(keys, 10.0, seed=3))
    np.testing.assert_array_equal(timescale_factors(keys, 1.0, seed=3), np.ones(6))
    many = timescale_factors(pd.Series(np.arange(4000).astype(str)), 10.0, seed=1)
    # log-uniform: about half the hosts slower, half faster
    assert 0.45 < np.mean(many > 1.0) < 0.55
    with pytest.raises(ValueError, match="at least 1"):
        timescale_factors(keys, 0.5, seed=3)


def test_only_the_augmented_copies_are_jittered(benign: pd.DataFrame) -> None:
    from model.train import jitter_timescale

    frame = benign.iloc[:100].assign(layout="cicids2017-improved")
    idx = {"train": np.arange(0, 100, 2), "val": np.arange(1, 100, 4), "test": np.arange(3, 100, 4)}
    augmented, _ = augment_extractors(frame, idx, ["java-versions"])
    out = jitter_timescale(augmented, 100, spread=10.0, seed=5)
    pd.testing.assert_frame_equal(out.iloc[:100], augmented.iloc[:100])  # originals untouched
    ratio = (out.flow_duration.iloc[100:] / augmented.flow_duration.iloc[100:]).to_numpy()
    moved = np.isfinite(ratio) & (augmented.flow_duration.iloc[100:].to_numpy() > 0)
    assert moved.sum() > 20 and np.all((ratio[moved] > 0.099) & (ratio[moved] < 10.01))
    # one pace per host of the copies
    hosts = augmented.src_ip.iloc[100:].to_numpy()
    for host in pd.unique(hosts[moved]):
        assert np.ptp(ratio[moved][hosts[moved] == host]) < 1e-6 * ratio[moved].max()


def test_timescale_jitter_needs_copies_to_jitter(tmp_path) -> None:
    from model.train import TrainConfig, prepare

    config = TrainConfig(
        data=[str(shared_data_dir() / "cicids2017-improved" / "BENIGN.csv")],
        out=str(tmp_path), augment_timescale=10.0,
    )
    with pytest.raises(ConfigurationError, match="add --augment-extractor"):
        prepare(config, log=lambda message: None)
    for spread in (0.5, float("nan"), float("inf")):
        config.augment_timescale = spread
        config.augment_extractors = ["java-versions"]
        with pytest.raises(ConfigurationError, match="a factor of at least 1"):
            prepare(config, log=lambda message: None)
