"""The feedback page's images get nbconvert's placeholder description without nbconvert's second parse of the page."""
from __future__ import annotations

import time

import pytest
from bs4 import BeautifulSoup

from convcourse.grading.nbgrader.feedback_page import NO_DESCRIPTION, described_images

# Start tags as the feedback template writes them, and as a student's raw HTML in Markdown or an output may spell them.
MARKUP = ['<img src="data:image/png;base64,AAAA"\n>', "<IMG SRC=x>", "<img src=x/>", '<img src="x" />', "<img>",
          """<img src="a>b" title='c'>""", "<img/src=x>", "<img\tsrc=x\n\n>", '<img src = "x"   >', '<img src="unclosed>',
          "<img alt>", '<img ALT="">', "<img src=x alt=>", '<img data-alt="x" src=y>', '<img title="alt=1">',
          "<!-- <img src=x> -->", '<script>var s = "<img src=x>";</script>', "<style>/* <img src=x> */</style>",
          '<SCRIPT>"<img>"</SCRIPT><img>', '<a title="<img src=x>">link</a>', "<p>1 < 2 and <img src=y></p>",
          '<img src=x><img src=y alt="given">', "<imgx src=y>", "<p>a</p><!-- <img src=x>", "<script>x = '<img src=y>'",
          "<img src=x <img src=y>", "<style><img></style><img src=z>"]


def nbconverts_pass(html: str) -> str:
    """What nbconvert's HTMLExporter does to a page after rendering it (nbconvert 7's from_notebook_node)."""
    soup = BeautifulSoup(html, features="html.parser")
    for image in soup.select("img:not([alt])"):
        image.attrs["alt"] = NO_DESCRIPTION
    return str(soup)


@pytest.mark.parametrize("html", MARKUP)
def test_images_are_described_as_nbconvert_describes_them(html):
    assert str(BeautifulSoup(described_images(html), features="html.parser")) == nbconverts_pass(html)


def test_only_images_without_a_description_change():
    assert described_images('<p><img src="x"></p>') == f'<p><img src="x" alt="{NO_DESCRIPTION}"></p>'
    given = '<img src="x" alt="a digit"><!-- <img src=y> --><b>bold</b>'
    assert described_images(given) == given


def test_a_page_full_of_unclosed_markup_costs_one_pass():
    # A student's Markdown cell or HTML output is raw HTML in the page. A pattern that, for each '<', could scan to
    # the end of the page and fail took 7 s for 4,000 of these (quadratic); now a match cannot fail, or fails at the next '<'.
    hostile = ["<a b " * 20_000, "<!-- x " * 20_000, "<script x " * 20_000, '<a b="' * 20_000, "<img src=x " * 20_000,
               "<a<a<a" * 20_000, "<a b=<a b=" * 20_000, "<a b='x <a c=\"y " * 20_000]
    began = time.perf_counter()
    for html in hostile:
        described_images(html)
    assert time.perf_counter() - began < 5  # ~0.1 s; the quadratic pattern would take minutes
