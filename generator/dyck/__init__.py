"""The Dyck baseline of SPEC section 5 as data: k-Dyck words in the same shards, catalog and trainer as NCA.

The paper pre-pre-trains on bracket sequences as a control: formal structure (nesting,
long-range matching) without any automaton. This package makes that data reproducibly,
in Arrow shards beside the NCA datasets, so the catalog serves it and `--stage nca`
trains on it unchanged.

    config.py    DyckConfig: the typed, validated dataset config
    words.py     the pure generation: counter-based draws, all sequences stepped together (numpy)
    format.py    the shard schema and the typed DyckManifest: the contract the catalog and trainer read
    pictures.py  depth profiles of sequences (Pillow)
    writer.py    shards and manifest on disk: atomic, resumable, verified on re-run
    __main__.py  python -m generator.dyck: the command line

Nothing here imports torch or Ray.
"""
