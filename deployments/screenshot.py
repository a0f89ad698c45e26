"""Screenshots of the Prefect UI for the documentation (docs/operations.md): the latest
completed `train` flow run on its Artifacts tab, and its `gates` table artifact. Playwright
drives Debian's headless Chromium (`make screenshot` installs it when missing; no browser is
downloaded). Each page must show the texts it is expected to show before it is saved, so an
empty or half-loaded page is an error, not a picture.

    python -m deployments.screenshot --api http://127.0.0.1:4200/api --out docs/
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

GATES = ("data", "compression", "fairness", "promotion")
LOAD_TIMEOUT_MS = 30_000


def latest_train_run(api: str) -> dict:
    """The most recently finished completed run of the `train` flow."""
    body = {
        "flows": {"name": {"any_": ["train"]}},
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
        "sort": "END_TIME_DESC",
        "limit": 1,
    }
    runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).raise_for_status().json()
    if not runs:
        raise SystemExit(f"no completed train run at {api}: run one first (assay serve, drop data)")
    return runs[0]


def artifact(api: str, flow_run_id: str, key: str) -> dict:
    body = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}, "key": {"any_": [key]}}}
    found = httpx.post(f"{api}/artifacts/filter", json=body, timeout=10).raise_for_status().json()
    if not found:
        raise SystemExit(f"flow run {flow_run_id} has no `{key}` artifact")
    return found[0]


def shows(page: Page, texts: tuple[str, ...]) -> None:
    """Wait until every text is on the page; fail naming the ones that never appeared."""
    for text in texts:
        try:
            page.get_by_text(text, exact=True).first.wait_for(timeout=LOAD_TIMEOUT_MS)
        except Exception:  # playwright's TimeoutError: say what was missing, on which page
            raise SystemExit(f"{page.url} never showed {text!r}: the UI did not load") from None


def capture(api: str, out: Path) -> list[Path]:
    ui = api.removesuffix("/").removesuffix("/api")
    run = latest_train_run(api)
    gates = artifact(api, run["id"], "gates")
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        raise SystemExit("chromium not found: `make screenshot` installs Debian's package")
    out.mkdir(parents=True, exist_ok=True)
    shots = [out / "prefect-train-run.png", out / "prefect-gates.png"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        # The run page, on its Artifacts tab: what data, gates, metrics and links at a glance
        page.goto(f"{ui}/runs/flow-run/{run['id']}")
        shows(page, (run["name"],))
        page.locator("li.p-tab#artifacts").click()
        page.locator(".p-button-group button").last.click()  # the list view: every artifact
        shows(page, ("gates", "mlflow-run", "model-version", "training-data"))
        page.locator("li.p-tab#artifacts").scroll_into_view_if_needed()
        page.screenshot(path=str(shots[0]))
        # The gates table itself
        page.goto(f"{ui}/artifacts/artifact/{gates['id']}")
        shows(page, GATES)
        page.set_viewport_size({"width": 1400, "height": 560})
        page.screenshot(path=str(shots[1]))
        browser.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:4200/api", help="Prefect API URL")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="folder for the PNGs")
    args = parser.parse_args(argv)
    for shot in capture(args.api, args.out):
        print(f"wrote {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
