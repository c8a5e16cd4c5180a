"""The shard catalog: a read-only HTTP service over a folder of ncaforge datasets.

Researchers list and inspect datasets, look at trajectories, and trainers on other
machines stream the exact shard bytes, verified by sha256; a prepared token corpus in
the same folder is listed and downloaded the same way. The service only reads
the shard folder; it never imports rollout code or torch, so it starts in a second.

    python -m service --host 127.0.0.1 --port 8000 --shards shards

Modules, one concern each:

    settings    the server's typed settings and their checks (host, port, folder, token)
    paths       path safety: nothing outside the shard folder is ever opened
    catalog     discovery of finished datasets (manifest present and valid) and their cached manifests
    corpora     prepared token corpora (trainer.corpus) as catalog entries beside the NCA datasets
    schemas     the typed documents every JSON endpoint answers with, published in /openapi.json
    views       manifests turned into those documents, and the list filters
    paging      offset/limit pages with next/prev links
    ranges      HTTP Range, If-Range and If-None-Match parsing
    downloads   shard bytes as 200/206/304/416 responses, streamed from disk
    rows        one row read from its record batch, not the whole shard
    pictures    preview PNG strips and animated GIFs of a row
    auth        the bearer token check
    routes_catalog, routes_data, app    the HTTP API
    client      the trainer's client: resolve, download with resume, verify, cache
"""
