"""The pages' own CSS and JavaScript (in `runner/assets/`), and how a page is
put together: one HTML file with everything inlined, so that it opens from
`file://` with no network.

    html = page(title="x", css=read("report.css"), body="<div id=app></div>",
                data_id="kpi-data", data="{}", js=read("report.js"))
"""

from __future__ import annotations

import html
import os
import tempfile
from importlib import resources
from pathlib import Path


def read(name: str) -> str:
    """One asset file of the package, as text."""
    return resources.files("runner").joinpath("assets", name).read_text(encoding="utf-8")


def page(*, title: str, css: str, body: str, data_id: str, data: str, js: str) -> str:
    """A complete HTML document. `data` is JSON whose `</` is already escaped."""
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # nothing may be fetched: a policy that says so, should a bug try
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
        f"<title>{html.escape(title)}</title>\n<style>\n{css}\n</style>\n</head>\n<body>\n"
        f"{body}\n"
        f'<script type="application/json" id="{data_id}">{data}</script>\n'
        f"<script>\n{js}\n</script>\n</body>\n</html>\n"
    )


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
