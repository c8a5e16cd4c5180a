"""`python -m trainer.generate CHECKPOINT --prompt "def " [--tokens 200] [--temperature 0.8] [--top-k 50]
[--seed 0]`: a language checkpoint's continuation of a prompt, printed after the prompt.

The prompt is encoded with GPT-2's BPE (trainer.tokenizer, offline) after an <|endoftext|>,
which is what precedes every document in a prepared corpus: the model reads the prompt as
the start of a document. Each next token is drawn from the softmax of the last position's
logits divided by the temperature, restricted to the top k (temperature 0: always the most
likely token), with a seeded torch.Generator, so the same checkpoint, prompt and seed give
the same text. Sampling stops at <|endoftext|> or after --tokens tokens.

There is no key-value cache: every token re-reads the whole context (cropped to the model's
last model.context tokens), which costs context times more compute than a cached decoder
but keeps the model's single forward path. For the models this trains on a CPU, a few
hundred tokens take seconds.
"""

import argparse
import sys

import torch

from trainer.checkpoint import CheckpointError
from trainer.loading import LoadedCheckpoint, load_checkpoint
from trainer.model import Transformer
from trainer.tokenizer import EOT, TokenizerError, load_tokenizer


def next_token(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator) -> int:
    """One token id drawn from `logits` (vocabulary,): greedy at temperature 0, else sampled from
    the top_k most likely (all when top_k is 0) after dividing by the temperature."""
    if temperature == 0:
        return int(logits.argmax())
    scaled = logits.double() / temperature
    if 0 < top_k < scaled.numel():
        scaled[scaled < torch.topk(scaled, top_k).values[-1]] = float("-inf")
    return int(torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=generator))


@torch.no_grad()
def sample_tokens(model: Transformer, context: list, max_tokens: int, temperature: float, top_k: int,
                  seed: int) -> list:
    """Up to `max_tokens` token ids following `context`, stopping before an <|endoftext|>."""
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    tokens, continuation = list(context), []
    for _ in range(max_tokens):
        window = torch.tensor([tokens[-model.config.context:]], device=device)
        logits = model(window)[0, -1, :model.vocab_size].float().cpu()
        token = next_token(logits, temperature, top_k, generator)
        if token == EOT:
            break
        tokens.append(token)
        continuation.append(token)
    return continuation


def continue_prompt(checkpoint: LoadedCheckpoint, prompt: str, max_tokens: int = 200, temperature: float = 0.8,
                    top_k: int = 50, seed: int = 0) -> str:
    """The prompt followed by the model's continuation; CheckpointError for a checkpoint that is not a language one."""
    if checkpoint.stage != "language":
        raise CheckpointError(f"{checkpoint.folder} is a {checkpoint.stage!r} checkpoint: its tokens are not text; "
                              f"give a checkpoint of a --stage language run")
    tokenizer = load_tokenizer()
    continuation = sample_tokens(checkpoint.model, [EOT, *tokenizer.encode(prompt)], max_tokens, temperature, top_k,
                                 seed)
    return prompt + tokenizer.decode(continuation)


def main(argv=None) -> int:
    from generator.arguments import OneLineParser, positive_int

    parser = OneLineParser(prog="python -m trainer.generate", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a language checkpoint folder RUN/step-NNNNNNNN")
    parser.add_argument("--prompt", default="", help="text to continue (default: the start of a document)")
    parser.add_argument("--tokens", type=positive_int, default=200, help="most tokens to generate (default 200)")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="softmax temperature; 0 always takes the most likely token (default 0.8)")
    parser.add_argument("--top-k", type=int, default=50,
                        help="sample among the k most likely tokens; 0 among all (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling generator (default 0)")
    args = parser.parse_args(argv)
    if not args.temperature >= 0:
        parser.error(f"--temperature {args.temperature}: give 0 (always the most likely token) or more")
    if args.top_k < 0:
        parser.error(f"--top-k {args.top_k}: give 0 (every token) or more")
    try:
        text = continue_prompt(load_checkpoint(args.checkpoint), args.prompt, args.tokens, args.temperature,
                               args.top_k, args.seed)
    except (CheckpointError, TokenizerError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
