"""The teacher's "my posts" list on the upload page: each post's state per account.

The list is drawn in the browser from approval's JSON (``/approval/api/posts?mine=1``,
whose content is tested in tests/unit/approval/test_api_targets.py); here the page's
own drawing code is run under Node with a tiny stand-in for the DOM."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.unit.intake.builders import a_rig, an_identity, bearer

TEACHER = an_identity(("north", "teacher"))
POST = {
    "post_id": "p1",
    "status": "published",
    "targets": [
        {
            "account_id": "tweets",
            "name": "Trust X",
            "platform": "x",
            "fit": {"state": "fits", "text": "Fits", "problems": [], "note": ""},
            "delivery": {
                "state": "live",
                "text": "Live — open it",
                "url": "https://x.com/school/status/1",
            },
        },
        {
            "account_id": "newsroom",
            "name": "Newsroom",
            "platform": "folder",
            "fit": {"state": "fits", "text": "Fits", "problems": [], "note": ""},
            "delivery": {
                "state": "live",
                "text": "Live — published to the school's folder",
                "url": "",
            },
        },
        {
            "account_id": "page",
            "name": "Facebook page",
            "platform": "facebook",
            "fit": {"state": "fits", "text": "Fits", "problems": [], "note": ""},
            "delivery": {
                "state": "waiting",
                "text": "Waiting: the account needs reconnecting",
                "url": "",
            },
        },
        {
            "account_id": "gram",
            "name": "Instagram",
            "platform": "instagram",
            "fit": {
                "state": "does_not_fit",
                "text": "Does not fit",
                "problems": ["Photo 1 is too tall for Instagram."],
                "note": "",
            },
            "delivery": None,
        },
    ],
}
# A stand-in for the few DOM calls the drawing code makes; prints what a person sees.
DOM = """
class El {
  constructor(tag) {
    this.tag = tag; this.kids = []; this.dataset = {}; this.className = "";
  }
  append(...xs) { this.kids.push(...xs); }
  set textContent(v) { this.kids = v === "" ? [] : [String(v)]; }
  get textContent() {
    return this.kids.map(k => typeof k === "string" ? k : k.textContent).join("");
  }
  links() {
    return this.kids.flatMap(
      k => typeof k === "string" ? [] : (k.tag === "a" ? [k.href] : k.links()));
  }
}
const document = {createElement: tag => new El(tag)};
"""


def page_html() -> str:
    res = a_rig().client().get("/", headers=bearer(TEACHER))
    assert res.status_code == 200
    return res.get_data(as_text=True)


def function_source(html: str, start: str) -> str:
    """The JavaScript function beginning with ``start``, up to its closing brace."""
    at = html.index(start)
    depth = 0
    for end in range(html.index("{", at), len(html)):
        depth += {"{": 1, "}": -1}.get(html[end], 0)
        if depth == 0:
            return html[at : end + 1]
    raise AssertionError(f"no end to {start}")


def test_my_posts_has_a_column_for_each_accounts_state():
    html = page_html()

    assert "<th>Accounts</th>" in html
    assert "targets(post)" in html
    assert "/approval/posts/${encodeURIComponent(post.post_id)}" in html


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_each_account_reads_in_words_with_a_link_only_to_a_live_web_address():
    html = page_html()
    script = "\n".join(
        [
            DOM,
            function_source(html, "const text = (tag, value, cls) =>"),
            function_source(html, "function targets(post)"),
            f"const cell = targets({json.dumps(POST)});",
            "const items = cell.kids[0].kids;",
            "console.log(JSON.stringify(items.map(i => "
            "({account: i.dataset.account, text: i.textContent, links: i.links()}))));",
        ]
    )

    out = subprocess.run(
        ["node", "-e", script], capture_output=True, text=True, timeout=20, check=True
    )

    assert json.loads(out.stdout) == [
        {
            "account": "tweets",
            "text": "Trust X (x): Live — open it",
            "links": ["https://x.com/school/status/1"],
        },
        {
            "account": "newsroom",
            "text": "Newsroom (folder): Live — published to the school's folder",
            "links": [],
        },
        {
            "account": "page",
            "text": "Facebook page (facebook): Waiting: the account needs reconnecting",
            "links": [],
        },
        {
            "account": "gram",
            "text": "Instagram (instagram): Does not fit: Photo 1 is too tall for "
            "Instagram.",
            "links": [],
        },
    ]
