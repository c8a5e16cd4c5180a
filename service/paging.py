"""Offset/limit pages with a total count and next/prev links, the shape of every list response.

Links repeat the request's own query (filters included) with a new offset, so a
client follows `next` until it is null without rebuilding queries. The whole list
is filtered in memory before slicing: catalogs hold tens to thousands of datasets,
each a few kB of manifest, so this stays far cheaper than the stat calls of a rescan.
"""

from fastapi import Query, Request

from service.schemas import Page, PageLinks

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000

OffsetQuery = Query(0, ge=0, description="Index of the first item to return.")
LimitQuery = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Items per page, 1-{MAX_LIMIT}.")


def page(page_type: type[Page], items: list, offset: int, limit: int, request: Request, render) -> Page:
    """A `page_type` of {total, offset, limit, items, links: {self, next, prev}}; next/prev are null at
    the ends. `render` turns one item of the page into its document (only the page's items are rendered)."""

    def link(at: int) -> str:
        return str(request.url.include_query_params(offset=at, limit=limit))

    total = len(items)
    return page_type(
        total=total,
        offset=offset,
        limit=limit,
        items=[render(item) for item in items[offset:offset + limit]],
        links=PageLinks(
            self=link(offset),
            next=link(offset + limit) if offset + limit < total else None,
            prev=link(max(0, offset - limit)) if offset > 0 else None,
        ),
    )
