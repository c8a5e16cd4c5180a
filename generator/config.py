"""Typed configuration of the automaton and of a generation run.

Defaults are the paper's (SPEC sections 1-3). Each field's docstring says what
it controls; `validate()` turns a bad value into a one-line message that names
the fix, and `to_dict()` is what gets saved beside every dataset. This module
imports no torch: `validate()` is pure, and devices are resolved when work starts.
"""

import re
from dataclasses import asdict, dataclass, field

from generator.bands import parse_band
from generator.errors import DEVICE_CHOICES, LANES, ConfigError

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass(frozen=True)
class NCAConfig:
    """The automaton, its sampling and its token layout."""

    grid_size: int = 12
    """Side of the square, periodic (torus) grid, in cells. Must be even (2x2 patches)."""
    num_colours: int = 10
    """Number of cell states; patch tokens are base-`num_colours` numbers."""
    conv_channels: int = 4
    """Output channels of the 3x3 neighbourhood convolution."""
    hidden_channels: int = 16
    """Width of the 1x1 ReLU layer between the convolution and the logits."""
    wrap_colour_channels: bool = True
    """Reproduce the reference's wrap padding of the colour axis: the first conv sees
    12 channels [c9, c0..c9, c0], so colours 0 and 9 get two weight sets."""
    temperature: float = 1e-4
    """Sampling temperature T of softmax((logits + identity_bias * onehot) / T)."""
    identity_bias: float = 0.0
    """Logit bonus for keeping the current colour."""
    burn_in: int = 10
    """Steps discarded before the first kept frame (states s0..s9)."""
    frames: int = 27
    """Frames kept per training trajectory: 27 frames x 38 tokens = 1026 tokens."""
    probe_frames: int = 10
    """Frames after burn-in that the gzip complexity probe compresses."""

    @property
    def input_channels(self) -> int:
        return self.num_colours + 2 if self.wrap_colour_channels else self.num_colours

    @property
    def patches_per_frame(self) -> int:
        return (self.grid_size // 2) ** 2

    @property
    def tokens_per_frame(self) -> int:
        return self.patches_per_frame + 2

    @property
    def tokens_per_sequence(self) -> int:
        return self.frames * self.tokens_per_frame

    @property
    def parameters_per_rule(self) -> int:
        c, h, k = self.conv_channels, self.hidden_channels, self.num_colours
        return 9 * self.input_channels * c + c * h + h * k + c + h + k

    def validate(self) -> "NCAConfig":
        if self.grid_size < 2 or self.grid_size % 2:
            raise ConfigError(f"grid_size={self.grid_size}: use an even size of at least 2 (2x2 patches)")
        if not 2 <= self.num_colours <= 10:
            raise ConfigError(f"num_colours={self.num_colours}: use 2..10 so a 2x2 patch fits below token 10000")
        if not self.temperature > 0:
            raise ConfigError(f"temperature={self.temperature}: use a positive temperature (the paper's is 1e-4)")
        for name in ("conv_channels", "hidden_channels", "frames", "probe_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: use a positive count")
        if self.burn_in < 0:
            raise ConfigError(f"burn_in={self.burn_in}: use 0 or more steps")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "NCAConfig":
        return cls(**values)


@dataclass(frozen=True)
class GeneratorConfig:
    """One generation run: which rules, in which band, on which device."""

    seed: int = 0
    """Dataset seed; every random draw derives from (seed, rule id, trajectory id)."""
    band: str = "high"
    """Complexity band: high, upper, mid, low, an alias (web, math, code) or 'LO-HI'."""
    trajectories_per_rule: int = 1
    """Training sequences rolled out per accepted rule (the paper: 1, fresh rules every epoch)."""
    rules_per_batch: int = 1024
    """Rules rolled out together in one tensor program, a multiple of 16 (the step's lanes).
    With a compiled step the last batch is padded to this size, so there is one shape."""
    device: str = "auto"
    """'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'."""
    compile: bool = True
    """torch.compile the step: about 25x faster on CPU. The first compile on a machine takes
    ~40 s, later processes load it from the disk cache in ~6 s. Same bits as eager."""
    gzip_threads: int = 1
    """Threads compressing probes in the background while the next batch rolls out
    (zlib releases the GIL)."""
    nca: NCAConfig = field(default_factory=NCAConfig)
    """The automaton."""

    def validate(self) -> "GeneratorConfig":
        """Check every value without touching a device: whether CUDA is there is decided at run time
        (generator.device.resolve_device), so a config can be checked where torch is not installed."""
        if not 0 <= self.seed < 2**64:
            raise ConfigError(f"seed={self.seed}: use an integer in [0, 2^64)")
        for name in ("trajectories_per_rule", "rules_per_batch", "gzip_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: use a positive count")
        if self.rules_per_batch % LANES:
            raise ConfigError(f"rules_per_batch={self.rules_per_batch}: use a multiple of {LANES}, e.g. 1024")
        parse_band(self.band)
        if not DEVICE_PATTERN.fullmatch(str(self.device).strip().lower()):
            raise ConfigError(f"unknown device {self.device!r}: use {DEVICE_CHOICES}")
        self.nca.validate()
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "GeneratorConfig":
        return cls(**{**values, "nca": NCAConfig.from_dict(values["nca"])})


@dataclass(frozen=True)
class DatasetConfig:
    """One dataset: how many sequences, cut into which shards, made by which generator.

    Everything here decides the bytes of the dataset, so its hash is the dataset id.
    How the work runs (workers, threads, batch size, compile) does not change a byte
    and lives in GeneratorConfig's runtime fields and RunOptions, outside the hash.
    """

    sequences: int = 160_000
    """Rows to write, one trajectory each (1026 tokens stored, 1024 seen per training context).
    The paper's 164M NCA tokens are 160,000 x 1024."""
    candidates_per_shard: int = 0
    """Candidate rule ids per shard: shard k scores ids [k * C, (k + 1) * C) and keeps those in
    the band. 0 resolves C from the band's expected acceptance to hold ~8,192 rows a shard."""
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    """The rules, the band and the automaton."""

    def validate(self) -> "DatasetConfig":
        if self.sequences < 1:
            raise ConfigError(f"sequences={self.sequences}: ask for at least 1 sequence (TOKENS or SEQUENCES > 0)")
        if self.candidates_per_shard < 0:
            raise ConfigError(f"candidates_per_shard={self.candidates_per_shard}: use a positive count, or 0 for auto")
        self.generator.validate()
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "DatasetConfig":
        return cls(**{**values, "generator": GeneratorConfig.from_dict(values["generator"])})


RUNTIME_FIELDS = ("rules_per_batch", "device", "compile", "gzip_threads")
"""GeneratorConfig fields that change how fast rows are made, never which rows: left out of
the dataset id and the manifest's config. The resolved device kind goes into the id instead
(CPU and CUDA may round differently)."""


def dataset_content(config: DatasetConfig) -> dict:
    """The config without its runtime fields: what decides a dataset's bytes, as the manifest
    records it (GeneratorConfig.from_dict fills the runtime fields back with defaults)."""
    content = config.to_dict()
    content["generator"] = {k: v for k, v in content["generator"].items() if k not in RUNTIME_FIELDS}
    return content


@dataclass(frozen=True)
class RunOptions:
    """How one run of the pipeline executes; none of it changes the dataset's bytes."""

    out: str = "shards"
    """Folder that receives OUT/<dataset-id>/."""
    ray_address: str = ""
    """A running Ray cluster ('host:port' or 'ray://host:port'); empty starts a local runtime
    on 127.0.0.1 and stops it at the end."""
    workers: int = 0
    """Generation actors; 0 = one per GPU on a GPU cluster, else one per CPU."""
    threads_per_worker: int = 0
    """torch threads per actor; 0 = one (several threads per actor stall at OpenMP barriers
    whenever another process takes a core)."""
    device: str = "auto"
    """'auto' (GPU actors when the cluster has GPUs, else CPU actors), 'cpu' or 'cuda'."""
    progress: bool = True
    """Show a progress bar on stderr."""
