"""The security headers every page and every download carries."""

from __future__ import annotations

# Scripts and styles come only from /-/static: no inline script, no inline style, no
# plugins, no framing. README images may come from any https address, as on other hubs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:;"
    " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "private, no-cache",
}
# A model's file is the uploader's content: never rendered as a page of this origin.
DOWNLOAD_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
}
STATIC_PREFIX = "/-/static"
SIGN_IN_PATH = "/-/sign-in"
