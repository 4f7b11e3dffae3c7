"""The JavaScript a bertviz document runs, inlined or linked.

Two sources: the vendored libraries in ``static/bertviz/`` (require.js, jQuery, d3; versions, licences
and sha256 hashes in its MANIFEST.json), which the app also serves as static files, and bertviz's
``head_view.js``/``model_view.js`` read from the installed package's *files* (located with
``importlib.util.find_spec``, which does not run ``bertviz/__init__.py`` and so never imports
``transformers``). A document either inlines the libraries (a standalone file that works offline) or
links them by URL with Subresource Integrity hashes from the manifest (an in-page view: the browser
fetches and compiles each library once, not once per view).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parents[1] / "static" / "bertviz"

# Order matters: jQuery and d3 load before require.js so they become plain
# globals (d3 would otherwise issue an anonymous AMD define()).
VENDOR_SCRIPTS = ("jquery-2.2.4.min.js", "d3-5.7.0.min.js", "require-2.3.6.js")

# Registers the globals as the AMD modules 'jquery' and 'd3' that bertviz's
# requirejs(['jquery', 'd3'], ...) call asks for, so nothing is fetched.
AMD_SHIM = (
    "define('jquery', [], function () { return window.jQuery; });\n"
    "define('d3', [], function () { return window.d3; });"
)

# A standalone document may fetch nothing; a linked one only scripts from its own origin
# (an st.iframe srcdoc document has the app's origin).
CSP_STANDALONE = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"
CSP_LINKED = "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'"

_SCRIPTS_URL = re.compile(r"/(?!/)[A-Za-z0-9_./-]*")
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{.*?\}\);", re.DOTALL)
_PARAMS_MARKER = "PYTHON_PARAMS;"
_UNSAFE_IN_SCRIPT = re.compile(r"</script|<!--", re.IGNORECASE)
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def library_tags(scripts_url: str | None) -> list[str]:
    """The three libraries' <script> tags: inline when ``scripts_url`` is None, else linked to it."""
    if scripts_url is None:
        return [script_tag(vendor_js(name)) for name in VENDOR_SCRIPTS]
    if not _SCRIPTS_URL.fullmatch(scripts_url):
        raise ValueError(f"scripts_url must be an absolute path on the app's origin like /app/static/bertviz, "
                         f"got {scripts_url!r}")
    base = scripts_url.rstrip("/")
    return [_linked_tag(f"{base}/{name}", name) for name in VENDOR_SCRIPTS]


def inline_libraries(document: str) -> str:
    """A linked document made standalone: each linked library inlined, the CSP that forbids fetching."""
    for name in VENDOR_SCRIPTS:
        tag = re.compile(r'<script src="[A-Za-z0-9_./-]*/' + re.escape(name) + r'" integrity="[^"]*"></script>')
        document, found = tag.subn(lambda _: script_tag(vendor_js(name)), document, count=1)
        if not found:
            raise ValueError(f"not a linked bertviz document: no <script> tag links {name}")
    csp = f'content="{CSP_LINKED}"'
    if csp not in document:
        raise ValueError("not a linked bertviz document: its Content-Security-Policy is not the linked one")
    return document.replace(csp, f'content="{CSP_STANDALONE}"', 1)


def view_js(js_name: str, params_json: str) -> str:
    """bertviz's view JS with its CDN ``require.config`` removed and the params filled in."""
    source = bertviz_js(js_name)
    source, n_configs = _REQUIRE_CONFIG.subn(
        "/* require.config removed: jquery and d3 are loaded above. */", source, count=1
    )
    if n_configs != 1 or _PARAMS_MARKER not in source:
        raise RuntimeError(
            f"bertviz's {js_name} has an unexpected layout (no require.config block or "
            f"no {_PARAMS_MARKER} marker); viz/bertviz_scripts.py needs updating"
        )
    return source.replace(_PARAMS_MARKER, params_json + ";", 1)


def json_for_script(value: object) -> str:
    """JSON that is safe inside <script>: '<', '>' and '&' become \\u escapes."""
    # Compact separators: the attention data is most of an in-page view.
    text = json.dumps(value, allow_nan=False, ensure_ascii=True, separators=(",", ":"))
    return re.sub(r"[<>&]", lambda m: _JSON_ESCAPES[m.group(0)], text)


def script_tag(js: str) -> str:
    """Wrap JS in an inline <script>, refusing text that could end or confuse the tag."""
    if _UNSAFE_IN_SCRIPT.search(js):
        raise RuntimeError("refusing to inline JavaScript containing '</script' or '<!--'")
    return f"<script>\n{js}\n</script>"


def _linked_tag(url: str, name: str) -> str:
    """<script src> with the manifest's hash, so the browser runs only the file that was vendored."""
    digest = base64.b64encode(bytes.fromhex(manifest_sha256()[name])).decode("ascii")
    return f'<script src="{url}" integrity="sha256-{digest}"></script>'


@lru_cache(maxsize=None)
def manifest_sha256() -> dict[str, str]:
    """File name -> sha256 (hex) of each vendored library, from static/bertviz/MANIFEST.json."""
    files = json.loads((VENDOR_DIR / "MANIFEST.json").read_text(encoding="utf-8"))["files"]
    return {entry["file"]: entry["sha256"] for entry in files}


@lru_cache(maxsize=None)
def vendor_js(name: str) -> str:
    """Text of a vendored library from static/bertviz/."""
    return (VENDOR_DIR / name).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def bertviz_js(name: str) -> str:
    """Text of a JS file shipped in the installed bertviz package, without importing bertviz."""
    spec = importlib.util.find_spec("bertviz")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("bertviz is not installed; install it with `pip install bertviz==1.4.1`")
    for location in spec.submodule_search_locations:
        path = Path(location) / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise RuntimeError(f"{name} not found in the installed bertviz package")
