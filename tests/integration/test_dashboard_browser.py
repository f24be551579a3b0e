"""The dashboard in a real headless Chromium while records stream in (as during a replay).

Needs a Kafka broker (session fixture ``kafka_bootstrap``) and Debian's ``chromium`` +
``chromium-driver`` (``.ci/install-browser.sh``; the test tries it once, skips if it cannot).
Does not need a worker: it produces verdict/alert/stats records itself.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

try:
    from tests.integration.dashboard_feed import ATTACKERS, BENIGN, Produced, produce_replay
except ImportError:  # tests/ is not a package: pytest put this directory on sys.path
    from dashboard_feed import ATTACKERS, BENIGN, Produced, produce_replay  # type: ignore[no-redef]

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = Path(__file__).resolve().parents[2] / ".ci" / "install-browser.sh"
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
)


def _ensure_chromium() -> None:
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    try:
        subprocess.run(["bash", str(INSTALL)], check=True, timeout=600, capture_output=True)
    except (subprocess.SubprocessError, OSError) as error:
        pytest.skip(f"chromium/chromium-driver not installed and install failed: {error}")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium/chromium-driver could not be installed")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    _ensure_chromium()
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def dashboard_topics(kafka_bootstrap: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    topics = {name: f"test-dash-{name}-{suffix}" for name in ("verdicts", "alerts", "stats")}
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=3, replication_factor=1) for topic in topics.values()]
    )
    for future in futures.values():
        future.result(30)
    yield topics
    admin.delete_topics(list(topics.values()))


def _wait(what: str, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _number(driver: Any, element_id: str) -> int:
    text = driver.find_element("id", element_id).text.replace(",", "").strip()
    return int(text) if text.isdigit() else -1


def test_dashboard_updates_live_during_replay(
    kafka_bootstrap: str, dashboard_topics: dict[str, str], browser: Any, tmp_path: Path
) -> None:
    from stream_ids.dashboard import Dashboard

    dashboard = Dashboard(
        {"bootstrap.servers": kafka_bootstrap},
        verdicts_topic=dashboard_topics["verdicts"],
        alerts_topic=dashboard_topics["alerts"],
        stats_topic=dashboard_topics["stats"],
        port=0,
        lookback_s=600,
    )
    with dashboard:
        browser.get(dashboard.url)
        assert browser.find_element("id", "flows-total").text == "0"
        _wait(
            "the page to see all three topics",
            lambda: all(
                t in browser.find_element("id", "status").text for t in dashboard_topics.values()
            ),
        )

        result: dict[str, Produced] = {}
        replay = threading.Thread(
            target=lambda: result.setdefault(
                "produced", produce_replay(kafka_bootstrap, dashboard_topics, seconds=8.0)
            ),
            daemon=True,
        )
        replay.start()
        try:
            first = _wait("verdicts on the page", lambda: max(0, _number(browser, "flows-total")))
            second = _wait(
                "the verdict counter to rise while records stream in",
                lambda: _number(browser, "flows-total") > first,
            )
            assert second
            assert replay.is_alive(), "the counter should rise during the replay, not after"
            row = _wait(
                "an alert row",
                lambda: browser.find_elements("css selector", "#alerts tbody tr"),
            )[0]
            cells = [td.text for td in row.find_elements("tag name", "td")]
            assert cells[1] in ATTACKERS + BENIGN, cells
            assert cells[2].startswith("192.168.10.50:"), cells
            assert 0.5 <= float(cells[3]) <= 1.0, cells
            assert cells[4] in {"DDoS", "BENIGN"}, cells
        finally:
            replay.join(60)
        produced = result["produced"]

        # Everything produced is eventually counted, and the rates come from the stats topic.
        _wait(
            f"{produced.verdicts} verdicts on the page",
            lambda: _number(browser, "flows-total") == produced.verdicts,
        )
        _wait(
            f"{produced.alerts} alerts on the page",
            lambda: _number(browser, "alerts-total") == produced.alerts,
        )
        assert browser.find_element("id", "precision").text.endswith("%")
        assert browser.find_element("id", "recall").text.endswith("%")
        assert browser.find_element("id", "workers").text == "1"
        hosts = [
            tr.find_elements("tag name", "td")[0].text
            for tr in browser.find_elements("css selector", "#hosts tbody tr")
        ]
        assert set(hosts[:3]) == set(ATTACKERS)  # the three attackers lead the list
        assert set(hosts) <= produced.alert_hosts
        assert browser.find_elements("css selector", "#chart polyline.flows")
        shot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
