"""Take docs/img/dashboard.png: the dashboard in headless Chromium during a replay-like run.

    python scripts/dashboard_screenshot.py --bootstrap 127.0.0.1:9092 [--out docs/img/dashboard.png]

Needs a broker and chromium + chromedriver (.ci/install-browser.sh). Produces verdict, alert and
stats records (contract schemas, from tests/integration/dashboard_feed.py) to fresh topics for
about a minute: benign traffic, a DDoS burst from three hosts, benign again.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from dashboard_feed import Produced, StatsFolder, produce_replay  # noqa: E402

from stream_ids.dashboard import Dashboard  # noqa: E402

PHASES = ((20.0, 0.01), (30.0, 0.55), (12.0, 0.02))  # (seconds, share of attack flows)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "dashboard.png")
    parser.add_argument("--rate", type=float, default=400.0)
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    suffix = uuid.uuid4().hex[:8]
    topics = {name: f"screenshot-{name}-{suffix}" for name in ("verdicts", "alerts", "stats")}
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for future in admin.create_topics([NewTopic(t, 3, 1) for t in topics.values()]).values():
        future.result(30)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1000",
    ]:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    try:
        with Dashboard(
            {"bootstrap.servers": args.bootstrap},
            verdicts_topic=topics["verdicts"],
            alerts_topic=topics["alerts"],
            stats_topic=topics["stats"],
            port=0,
        ) as dashboard:
            driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
            try:
                driver.get(dashboard.url)
                folder, produced = StatsFolder("worker-1"), Produced()

                def replay() -> None:
                    for seconds, share in PHASES:
                        produce_replay(
                            args.bootstrap, topics, seconds, args.rate, attack_share=share,
                            folder=folder, produced=produced,
                        )  # fmt: skip

                thread = threading.Thread(target=replay, daemon=True)
                thread.start()
                thread.join()
                time.sleep(3)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(args.out))
                print(f"{produced.verdicts} verdicts, {produced.alerts} alerts -> {args.out}")
            finally:
                driver.quit()
    finally:
        admin.delete_topics(list(topics.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
