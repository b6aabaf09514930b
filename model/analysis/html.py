"""A Markdown report page → one self-contained HTML page: figures inlined as data URIs, a table of contents, no
network access when opened.

Markdown is rendered by markdown-it-py (CommonMark plus tables); every heading gets the id GitHub would give it
(`anchor`), so a link `[x](#combined)` works in report.md on GitHub and in report.html alike. Images must be files
beside the page (PNG, SVG, JPEG); anything else raises DataError. A few lines of inline script record, once the page
has loaded, how many images decoded (`<body data-images-loaded="N/M">`, broken ones named in `data-images-broken`),
which the browser test reads. This module formats; it must not compute or draw.
"""
import base64
import html
import re
from pathlib import Path

from model import atomic
from model.errors import DataError

MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; line-height: 1.45;
       color: #1b1b1b; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5em 2em 4em; }
nav.toc { background: #f5f6f8; border: 1px solid #dde1e6; border-radius: 6px; padding: .6em 1.2em; margin: 1em 0 2em; }
nav.toc ul { margin: .2em 0; padding-left: 1.2em; } nav.toc > ul { padding-left: .4em; } nav.toc li { margin: .1em 0; }
h1 { font-size: 1.7em; border-bottom: 2px solid #ccc; padding-bottom: .2em; }
h2 { font-size: 1.35em; border-bottom: 1px solid #ddd; padding-bottom: .15em; margin-top: 2em; }
h3 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .88em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d4d9; padding: .25em .55em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; } thead th { background: #eef1f4; }
tbody tr:nth-child(even) { background: #fafbfc; }
.scroll { overflow-x: auto; }
img { max-width: 100%; height: auto; display: block; margin: .6em 0; }
code { background: #f1f2f4; padding: 0 .25em; border-radius: 3px; font-size: .9em; }
a { color: #0b5cad; }
"""

SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute("data-images-loaded", (imgs.length - bad.length) + "/" + imgs.length);
  document.body.setAttribute("data-images-broken", bad.map(function (i) { return i.alt; }).join(" | "));
});
"""


def anchor(text: str) -> str:
    """GitHub's heading id: lower case, punctuation dropped (letters of any script, digits, `-` and `_` kept),
    spaces to hyphens. `Did the regulariser act?` → `did-the-regulariser-act`."""
    text = re.sub(r"[*`]|!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # inline markup: keep the visible text only
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _data_uri(src: str, folder: Path) -> str:
    path = folder / src
    mime = MIME.get(path.suffix.lower())
    if re.match(r"^[a-z][a-z0-9+.-]*:", src) or mime is None:
        raise DataError(f"image {src!r}: expected a PNG, SVG or JPEG file beside the report, not a URL or other type")
    if not path.is_file():
        raise DataError(f"{path}: image linked from the report does not exist")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def render(markdown_text: str, folder: Path) -> tuple[str, list[tuple[int, str, str]]]:
    """(HTML body, headings as (level, id, text)); images are inlined from `folder`."""
    md = _markdown()
    tokens = md.parse(markdown_text)
    headings, seen = [], {}
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            text = tokens[i + 1].content
            slug = anchor(text)
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            slug = slug if n == 0 else f"{slug}-{n}"  # GitHub numbers repeated headings the same way
            tok.attrSet("id", slug)
            headings.append((int(tok.tag[1]), slug, "".join(c.content for c in tokens[i + 1].children or [])))
        for child in tok.children or []:
            if child.type == "image":
                child.attrSet("src", _data_uri(child.attrGet("src"), folder))
    body = md.renderer.render(tokens, md.options, {})
    body = body.replace("<table>", '<div class="scroll"><table>').replace("</table>", "</table></div>")
    return body, headings


def toc(headings: list[tuple[int, str, str]]) -> str:
    """Nested list of links to the level-2 and level-3 headings."""
    out, depth = ['<nav class="toc"><strong>Contents</strong>'], 1
    for level, slug, text in headings:
        if level not in (2, 3):
            continue
        while depth < level:
            out.append("<ul>")
            depth += 1
        while depth > level:
            out.append("</ul>")
            depth -= 1
        out.append(f'<li><a href="#{slug}">{html.escape(text)}</a></li>')
    out += ["</ul>"] * (depth - 1) + ["</nav>"]
    return "\n".join(out)


def page(markdown_text: str, folder: Path, title: str) -> str:
    """The whole HTML document: the first heading, then the table of contents, then the rest."""
    body, headings = render(markdown_text, folder)
    first_end = body.find("</h1>")
    head, rest = (body[:first_end + 5], body[first_end + 5:]) if first_end >= 0 else ("", body)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n<script>{SCRIPT}</script>\n</head>\n"
            f"<body>\n<main>\n{head}\n{toc(headings)}\n{rest}</main>\n</body>\n</html>\n")


def write(markdown_path: str | Path, out_path: str | Path | None = None, title: str | None = None) -> Path:
    """Render `report.md` (images beside it) to `report.html` beside it (or `out_path`) atomically; return the path."""
    markdown_path = Path(markdown_path)
    text = markdown_path.read_text(encoding="utf-8")
    if title is None:
        first = re.search(r"^# (.+)$", text, re.M)
        title = first.group(1) if first else markdown_path.stem
    out_path = Path(out_path) if out_path else markdown_path.with_suffix(".html")
    return atomic.write_text(out_path, page(text, markdown_path.parent, title))
