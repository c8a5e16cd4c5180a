"""ncaforge generator: random neural cellular automata rolled out as token sequences.

The package turns the method of "Training Language Models via Neural Cellular
Automata" (Lee et al., 2026) into a batched PyTorch program. Importing it is
cheap: torch is loaded by the modules that need it, so the catalog service can
import `generator.format` (the shard contract) without pulling in rollout code.
"""

__version__ = "0.1.0"
