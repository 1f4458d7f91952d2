"""The report in a real browser: Debian's headless Chromium loads the page from a file (no network),
dumps its DOM after layout and takes a screenshot; the tables, every battery and every image
(decoded, with a size) are found. Chromium comes from tools/ensure_chromium.sh (apt-get when it
is missing); the test skips, saying why, when it cannot be had."""

import re
import subprocess

import pytest

from edge.report import write_report
from tests.browser import headless_chromium

from .conftest import CELLS

pytestmark = pytest.mark.integration

CHECK = """
<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const out = document.createElement('pre');
  out.id = 'dom-check';
  out.textContent = JSON.stringify({
    tables: [...document.querySelectorAll('table')].map(t => t.id),
    cells: [...document.querySelectorAll('#batteries-table tbody tr')].map(r => r.dataset.cellId),
    images: imgs.map(i => [i.id, i.complete, i.naturalWidth, i.naturalHeight]),
  });
  document.body.appendChild(out);
});
</script>
"""


@pytest.fixture(scope="module")
def chromium():
    return headless_chromium()


def browse(chromium: str, page, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--hide-scrollbars", "--allow-file-access-from-files", "--virtual-time-budget=5000",
                           f"--user-data-dir={page.parent / 'profile'}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def test_the_report_renders_with_every_battery_its_tables_and_its_images(chromium, batch_dir, tmp_path):
    import json

    page = tmp_path / "report.html"
    write_report(batch_dir, page)
    checked = tmp_path / "checked.html"  # the page plus a probe that writes what the browser sees into the DOM
    checked.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    dom = browse(chromium, checked, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    probe = json.loads(re.search(r'<pre id="dom-check">(.*?)</pre>', dom.stdout, re.S).group(1).replace("&quot;", '"'))
    assert probe["tables"] == ["summary-table", "batteries-table", "alarms-table", "events-table"]
    assert probe["cells"] == list(CELLS)
    assert [i[0] for i in probe["images"]] == ["gantt-img", "station-0", "station-1"]
    for ident, complete, width, height in probe["images"]:
        assert complete and width > 300 and height > 150, (ident, width, height)  # decoded, not a broken image
    shot = tmp_path / "shot.png"
    done = browse(chromium, page, "--window-size=1400,2400", f"--screenshot={shot}")
    assert done.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
