"""Debian's Chromium driven by Playwright (``executable_path``: no browser is downloaded),
for the side panel's UI tests: log in to the hub, open JupyterLab, open the panel.

Screenshots go to ``test-artifacts/`` at the checkout's root (``MLPLAT_TEST_ARTIFACTS``
overrides it), one PNG per tab and theme.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this closed network
# refuses; as root it needs --no-sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TABS = ("Runs", "Models", "Deployments", "Jobs", "Pipelines")
TIMEOUT_MS = 60_000


def artifacts_dir() -> Path:
    root = Path(__file__).resolve().parent.parent
    folder = Path(os.environ.get("MLPLAT_TEST_ARTIFACTS") or root / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def log_in(browser, hub_url: str, user: str, password: str):
    """A new browser context logged in to the hub as ``user`` through its login form; the
    page shows that user's JupyterLab (their server must be running)."""
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{hub_url}/hub/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(re.compile(r".*/hub/(home|spawn.*|user/.*)|.*/user/.*"))
    page.goto(f"{hub_url}/user/{user}/lab")
    page.wait_for_selector("#jp-main-dock-panel")
    return page


def open_panel(page):
    page.get_by_role("tab", name="ML platform").click()
    page.wait_for_selector("#mlplat-panel")
    return page.locator("#mlplat-panel")


def show_tab(page, name: str):
    """Switch the panel to tab ``name``; its panel's locator."""
    page.locator("#mlplat-panel").get_by_role("tab", name=name, exact=True).click()
    return page.locator(f"[data-testid=mlplat-tab-{name.lower()}]")


def row(tab, row_id: str):
    return tab.locator(f"[data-testid=mlplat-row][data-id='{row_id}']")


def set_theme(page, dark: bool) -> None:
    """JupyterLab's theme setting, written through Lab's settings API (as the Settings →
    Theme menu writes it, with the page's XSRF token), then the page reloaded with the
    panel open again."""
    theme = "JupyterLab Dark" if dark else "JupyterLab Light"
    status = page.evaluate(
        """async (theme) => {
            const config = JSON.parse(document.getElementById('jupyter-config-data').textContent);
            const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]+)/) || [])[1] || '';
            const url = config.baseUrl + 'lab/api/settings/@jupyterlab/apputils-extension:themes';
            const response = await fetch(url, {
                method: 'PUT', credentials: 'same-origin',
                headers: {'Content-Type': 'application/json', 'X-XSRFToken': decodeURIComponent(xsrf)},
                body: JSON.stringify({raw: JSON.stringify({theme})}),
            });
            return response.status;
        }""",
        theme,
    )
    assert status == 204, status
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel")
    page.wait_for_selector(f"body[data-jp-theme-name='{theme}']", state="attached")
    if not page.locator("#mlplat-panel").is_visible():
        open_panel(page)


def widen_panel(page, width: int) -> None:
    """Drag the left sidebar's edge to ``width`` pixels (for pictures with whole tables)."""
    box = page.locator("#mlplat-panel").bounding_box()
    edge = box["x"] + box["width"] + 2
    page.mouse.move(edge, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(width, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()


def screenshot(page, name: str) -> Path:
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
