"""ncaforge trainer: pre-pre-train a Llama-style transformer on NCA shards, with torchrun DDP.

Decoupled from generation: it reads a catalog URL or a dataset folder (through the format
contract in generator.format and the catalog client in service.client), never the rollout
code. Entry point: `torchrun trainer/main.py` (or plain `python trainer/main.py`).
"""
